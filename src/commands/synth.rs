//! `gtmos synth`: generate a corpus, or `--verify` one against its manifest.

use serde_json::json;

use super::{thousands, threads};
use crate::cli::SynthArgs;
use crate::error::{Outcome, Result};
use crate::printer::{Format, out, out_json};
use crate::synth::params::{Archetype, CANARY_OUTCOMES, FaultClass, SynthParams};
use crate::synth::{self};

/// Parameters from the flags, validated.
pub fn params(a: &SynthArgs) -> Result<SynthParams> {
    let mut p = SynthParams {
        seed: a.seed,
        accounts: a.accounts,
        start: a.start.clone(),
        end: a.end.clone(),
        prospect_share: a.prospect_share,
        ..SynthParams::default()
    };
    p.canary.share = a.canary_share;
    p.canary.weeks = a.canary_weeks;
    p.canary.variant_share = a.canary_variant_share;
    p.canary.responsiveness_sigma = a.canary_responsiveness_sigma;
    if let Some(mix) = &a.mix {
        let names: Vec<&str> = Archetype::ALL.iter().map(|x| x.name()).collect();
        SynthParams::set_pairs(&mut p.mix, mix, "archetype", &names)?;
    }
    if a.no_faults {
        p.fault_rates.values_mut().for_each(|r| *r = 0.0);
    }
    if let Some(rates) = &a.fault_rate {
        let names: Vec<&str> = FaultClass::ALL.iter().map(|x| x.name()).collect();
        SynthParams::set_pairs(&mut p.fault_rates, rates, "fault class", &names)?;
    }
    if let Some(eff) = &a.canary_effect {
        SynthParams::set_pairs(
            &mut p.canary.effects,
            eff,
            "canary outcome",
            &CANARY_OUTCOMES,
        )?;
    }
    p.resolve()?;
    Ok(p)
}

pub fn run(a: SynthArgs) -> Result<Outcome> {
    let show = crate::printer::progress_wanted();
    let threads = threads(a.threads);
    if let Some(dir) = &a.verify {
        let report = synth::verify(dir, threads, show)?;
        match a.format {
            Format::Json => out_json(&json!({
                "snapshot": dir.display().to_string(),
                "checked": report.checked,
                "differing": report.differing,
                "identical": report.differing.is_empty(),
            }))?,
            Format::Text => {
                if report.differing.is_empty() {
                    out(&format!(
                        "{}: identical — {} files regenerate byte for byte\n",
                        dir.display(),
                        report.checked.len()
                    ))?;
                } else {
                    let mut s = format!(
                        "{}: generator drift — {} of {} files differ:\n",
                        dir.display(),
                        report.differing.len(),
                        report.checked.len()
                    );
                    for d in &report.differing {
                        s.push_str(&format!("  {d}\n"));
                    }
                    out(&s)?;
                }
            }
        }
        return Ok(report.outcome());
    }
    let p = params(&a)?;
    let corpus = match a.nights {
        Some(_) => a.out.join("corpus"),
        None => a.out.clone(),
    };
    let r = synth::generate(&p, &corpus, threads, show)?;
    let nights = match a.nights {
        Some(n) => Some(synth::nights::write_nights(&corpus, &a.out, n)?),
        None => None,
    };
    let m = &r.manifest;
    match a.format {
        Format::Json => out_json(&json!({
            "snapshot": r.dir.display().to_string(),
            "snapshot_id": m.snapshot_id,
            "as_of": m.as_of,
            "rows": r.rows,
            "bytes": r.bytes,
            "seconds": r.seconds,
            "tables": m.tables.iter().map(|(k, v)| (k.clone(), json!({"rows": v.rows, "sha256": v.sha256}))).collect::<serde_json::Map<_, _>>(),
            "nights": nights,
        }))?,
        Format::Text => {
            let mut s = format!(
                "wrote {} (snapshot {}, as_of {})\n",
                r.dir.display(),
                m.snapshot_id,
                m.as_of
            );
            s.push_str(&format!(
                "  {} tables, {} rows, {:.1} MB in {:.1} s\n",
                m.tables.len(),
                thousands(r.rows),
                r.bytes as f64 / 1e6,
                r.seconds
            ));
            for (name, t) in &m.tables {
                s.push_str(&format!("  {name:<22} {:>12}\n", thousands(t.rows)));
            }
            s.push_str(&format!("  oracle: {}\n", r.dir.join("oracle").display()));
            if let Some(nights) = &nights {
                s.push_str(&format!(
                    "{} nights in {} (index {}):\n",
                    nights.len(),
                    a.out.display(),
                    synth::nights::INDEX
                ));
                for n in nights {
                    let added: u64 = n.new_rows.values().sum();
                    s.push_str(&format!(
                        "  {}  as_of {}  {}  +{} append-only rows\n",
                        n.dir,
                        n.as_of,
                        n.snapshot_id,
                        thousands(added)
                    ));
                }
            }
            out(&s)?;
        }
    }
    Ok(Outcome::Success)
}
