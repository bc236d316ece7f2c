//! The brain eval harness (`gtmos eval brain`, SPEC §11): the question catalog, the rubric and
//! the prompt-tuner registry under `golden/brain_eval/`; brain outputs (BrainAnalysisLog JSONL)
//! and reviewer scores lined up with the catalog (Polars); the validators — the write-time
//! checks of BrainAnalysisLog — with their calibration probes; the rubric's decision, the
//! evidence each hard criterion's sample supports, and per-question flakiness across runs.
//!
//! One file per step: `catalog` (questions, rubric, registry), `outputs` (reading and lining
//! up what is scored), `validators` (one check per [`Rule`]), `probes` (the validators'
//! calibration, read from `golden/brain_eval/probes.yml`), `scoring` (the rubric and its
//! decision) and `workflow` (the gate, the logs and the promotion decision).

mod workflow;

pub use workflow::{BrainEval, BrainRun, Refusal, Request, run};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::golden::{bad, jsonl, refuse};
use super::keys::match_keys;
use super::metrics;
use crate::error::{Error, Result};
use crate::table_io::sha256_file;

mod catalog;
mod outputs;
mod probes;
mod scoring;
mod validators;

pub use catalog::*;
pub use outputs::*;
pub use probes::*;
pub use scoring::*;
pub use validators::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_after_stops_not_inside_numbers() {
        assert_eq!(
            sentences("Usage rose 12.5 % [src:1]. Why? Because. Trailing"),
            vec!["Usage rose 12.5 % [src:1].", "Why?", "Because.", "Trailing"]
        );
    }

    #[test]
    fn citations_parse_numbers_and_malformed_markers() {
        let c = citations("a [src:1] b [src:12] c [src:x] d [src:");
        let n: Vec<Option<u32>> = c.iter().map(|(_, n)| *n).collect();
        assert_eq!(n, vec![Some(1), Some(12), None, None]);
    }

    #[test]
    fn citation_counts_ignore_digits_in_markers() {
        let mut o = BrainOutput {
            narrative_output: "Usage grew 12 % a month for six months [src:1]. TOOL-004 puts the overage 40 days out [src:2]. Open the expansion play.".into(),
            sources_read: [(1, "usage"), (2, "TOOL-004")]
                .map(|(source_index, source)| SourceRead {
                    source_index,
                    source: source.into(),
                    ..Default::default()
                })
                .to_vec(),
            ..Default::default()
        };
        // 3 sentences: two factual (cited), one without a number.
        assert_eq!(citation_counts(&o), (2, 2));
        o.narrative_output =
            "Renewal is 90 days out. Nothing else [src:1]. Grew 5 % [src:7].".into();
        // "Nothing else [src:1]." has no digit outside its marker; [src:7] does not resolve.
        assert_eq!(citation_counts(&o), (2, 0));
    }
}
