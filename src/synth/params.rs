//! Parameters of a synthetic corpus: the archetypes and their mix, the labelled fault classes
//! and their rates, the canary experiment's true effects. Everything here is recorded in the
//! manifest's `source`, and `gtmos synth --verify` rebuilds a corpus from exactly that record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calendar::Day;
use crate::error::{Error, Result};

/// Bumped whenever a change to the generator changes its output for the same parameters.
pub const GENERATOR_VERSION: u32 = 5;
pub const GENERATOR: &str = "gtmos-synth";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Archetype {
    IdealPowerUser,
    Activating,
    SurfaceOnlyAdopter,
    ChampionLossDecliner,
    ExpansionReady,
    SpikeThenCrash,
    Seasonal,
    StalledOnboarding,
}

impl Archetype {
    pub const ALL: [Archetype; 8] = [
        Archetype::IdealPowerUser,
        Archetype::Activating,
        Archetype::SurfaceOnlyAdopter,
        Archetype::ChampionLossDecliner,
        Archetype::ExpansionReady,
        Archetype::SpikeThenCrash,
        Archetype::Seasonal,
        Archetype::StalledOnboarding,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Archetype::IdealPowerUser => "ideal_power_user",
            Archetype::Activating => "activating",
            Archetype::SurfaceOnlyAdopter => "surface_only_adopter",
            Archetype::ChampionLossDecliner => "champion_loss_decliner",
            Archetype::ExpansionReady => "expansion_ready",
            Archetype::SpikeThenCrash => "spike_then_crash",
            Archetype::Seasonal => "seasonal",
            Archetype::StalledOnboarding => "stalled_onboarding",
        }
    }

    pub fn parse(s: &str) -> Option<Archetype> {
        Archetype::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Default share of customers.
    fn default_weight(self) -> f64 {
        match self {
            Archetype::IdealPowerUser => 0.16,
            Archetype::Activating => 0.08,
            Archetype::SurfaceOnlyAdopter => 0.15,
            Archetype::ChampionLossDecliner => 0.12,
            Archetype::ExpansionReady => 0.14,
            Archetype::SpikeThenCrash => 0.10,
            Archetype::Seasonal => 0.13,
            Archetype::StalledOnboarding => 0.12,
        }
    }
}

/// What the pipeline is expected to do with a labelled row (the oracle's `expected` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// A replay of an already-ingested event: a no-op, recorded.
    Duplicate,
    /// Accepted and recorded as a SOFT-rule warning.
    Warn,
    /// Fails a HARD ingest rule: rejected to quarantine / dead letter.
    Reject,
    /// Fails a contract test (enum integrity, missing owner): quarantined.
    Quarantine,
    /// Accepted but excluded downstream (disputed usage).
    Exclude,
    /// A correction: the new version replaces the old one in the current view.
    Supersede,
    /// A restatement of a closed period.
    Restate,
    /// A reference figure that differs from the books beyond tolerance.
    Discrepancy,
    /// Out of range: blocks publishing of the affected metric.
    Block,
}

impl Expected {
    pub fn name(self) -> &'static str {
        match self {
            Expected::Duplicate => "duplicate",
            Expected::Warn => "warn",
            Expected::Reject => "reject",
            Expected::Quarantine => "quarantine",
            Expected::Exclude => "exclude",
            Expected::Supersede => "supersede",
            Expected::Restate => "restate",
            Expected::Discrepancy => "discrepancy",
            Expected::Block => "block",
        }
    }
}

/// What a fault class's rate counts per.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    Account,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultClass {
    DuplicateEvent,
    LateArrival,
    EffectiveAtDrift,
    UsageAnomaly,
    NegativeUnits,
    InvertedPeriod,
    FutureDatedPeriod,
    MissingIngestEventId,
    OrphanAccountId,
    SeatUtilizationOutOfRange,
    NonMonotonicVersion,
    UsageEnumDrift,
    DisputedUsage,
    VersionCorrection,
    OpportunityEnumDrift,
    MissingOwner,
    ReferenceUsageDiscrepancy,
    ReferenceBillingDiscrepancy,
    ReferenceGlDiscrepancy,
    Restatement,
    SpendOutOfRange,
}

impl FaultClass {
    pub const ALL: [FaultClass; 21] = [
        FaultClass::DuplicateEvent,
        FaultClass::LateArrival,
        FaultClass::EffectiveAtDrift,
        FaultClass::UsageAnomaly,
        FaultClass::NegativeUnits,
        FaultClass::InvertedPeriod,
        FaultClass::FutureDatedPeriod,
        FaultClass::MissingIngestEventId,
        FaultClass::OrphanAccountId,
        FaultClass::SeatUtilizationOutOfRange,
        FaultClass::NonMonotonicVersion,
        FaultClass::UsageEnumDrift,
        FaultClass::DisputedUsage,
        FaultClass::VersionCorrection,
        FaultClass::OpportunityEnumDrift,
        FaultClass::MissingOwner,
        FaultClass::ReferenceUsageDiscrepancy,
        FaultClass::ReferenceBillingDiscrepancy,
        FaultClass::ReferenceGlDiscrepancy,
        FaultClass::Restatement,
        FaultClass::SpendOutOfRange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultClass::DuplicateEvent => "duplicate_event",
            FaultClass::LateArrival => "late_arrival",
            FaultClass::EffectiveAtDrift => "effective_at_drift",
            FaultClass::UsageAnomaly => "usage_anomaly",
            FaultClass::NegativeUnits => "negative_units",
            FaultClass::InvertedPeriod => "inverted_period",
            FaultClass::FutureDatedPeriod => "future_dated_period",
            FaultClass::MissingIngestEventId => "missing_ingest_event_id",
            FaultClass::OrphanAccountId => "orphan_account_id",
            FaultClass::SeatUtilizationOutOfRange => "seat_utilization_out_of_range",
            FaultClass::NonMonotonicVersion => "non_monotonic_version",
            FaultClass::UsageEnumDrift => "usage_enum_drift",
            FaultClass::DisputedUsage => "disputed_usage",
            FaultClass::VersionCorrection => "version_correction",
            FaultClass::OpportunityEnumDrift => "opportunity_enum_drift",
            FaultClass::MissingOwner => "missing_owner",
            FaultClass::ReferenceUsageDiscrepancy => "reference_usage_discrepancy",
            FaultClass::ReferenceBillingDiscrepancy => "reference_billing_discrepancy",
            FaultClass::ReferenceGlDiscrepancy => "reference_gl_discrepancy",
            FaultClass::Restatement => "restatement",
            FaultClass::SpendOutOfRange => "spend_out_of_range",
        }
    }

    pub fn parse(s: &str) -> Option<FaultClass> {
        FaultClass::ALL.into_iter().find(|f| f.name() == s)
    }

    pub fn table(self) -> &'static str {
        match self {
            FaultClass::OpportunityEnumDrift | FaultClass::MissingOwner => "opportunities",
            FaultClass::ReferenceUsageDiscrepancy => "reference_usage",
            FaultClass::ReferenceBillingDiscrepancy => "reference_billing",
            FaultClass::ReferenceGlDiscrepancy => "reference_gl",
            FaultClass::Restatement => "restatements",
            FaultClass::SpendOutOfRange => "gtm_spend",
            _ => "usage_metering_log",
        }
    }

    pub fn expected(self) -> Expected {
        match self {
            FaultClass::DuplicateEvent => Expected::Duplicate,
            FaultClass::LateArrival | FaultClass::EffectiveAtDrift | FaultClass::UsageAnomaly => {
                Expected::Warn
            }
            FaultClass::NegativeUnits
            | FaultClass::InvertedPeriod
            | FaultClass::FutureDatedPeriod
            | FaultClass::MissingIngestEventId
            | FaultClass::OrphanAccountId
            | FaultClass::SeatUtilizationOutOfRange
            | FaultClass::NonMonotonicVersion => Expected::Reject,
            FaultClass::UsageEnumDrift
            | FaultClass::OpportunityEnumDrift
            | FaultClass::MissingOwner => Expected::Quarantine,
            FaultClass::DisputedUsage => Expected::Exclude,
            FaultClass::VersionCorrection => Expected::Supersede,
            FaultClass::Restatement => Expected::Restate,
            FaultClass::ReferenceUsageDiscrepancy
            | FaultClass::ReferenceBillingDiscrepancy
            | FaultClass::ReferenceGlDiscrepancy => Expected::Discrepancy,
            FaultClass::SpendOutOfRange => Expected::Block,
        }
    }

    pub fn rate_unit(self) -> RateUnit {
        match self {
            FaultClass::ReferenceGlDiscrepancy | FaultClass::SpendOutOfRange => RateUnit::Month,
            _ => RateUnit::Account,
        }
    }

    /// Default rate: faults per account (or per month of the window, see [`RateUnit`]).
    pub fn default_rate(self) -> f64 {
        match self {
            FaultClass::DuplicateEvent | FaultClass::LateArrival => 0.010,
            FaultClass::VersionCorrection => 0.020,
            FaultClass::EffectiveAtDrift | FaultClass::DisputedUsage => 0.005,
            FaultClass::UsageAnomaly => 0.004,
            FaultClass::OpportunityEnumDrift => 0.002,
            FaultClass::Restatement => 0.001,
            FaultClass::ReferenceGlDiscrepancy => 0.04,
            // Blocking a metric makes the default build exit 1, so it is off unless asked for.
            FaultClass::SpendOutOfRange => 0.0,
            _ => 0.003,
        }
    }
}

/// Relative true effects of the canary variant, per outcome step (0.15 = +15 %).
pub const CANARY_OUTCOMES: [&str; 11] = [
    "reply",
    "positive_reply",
    "meeting_booked",
    "opportunity_created",
    "bounce",
    "unsubscribe",
    "trust_block",
    "duplicate_incident",
    "cooldown_violation",
    "human_rejected",
    "cost",
];

/// The default corpus's canary variant draws more replies but far fewer positive ones (its
/// messages push too hard): positive replies fall by 60 %, a regression the always-valid test
/// shows on the default traffic (about 3,000 decisions in six weeks), so `gtmos canary`
/// decides `rollback` there, after the variant passed its golden eval. A true uplift of
/// +10–15 % would need tens of thousands of decisions per arm to be shown, and the guardrails
/// as many to be shown non-inferior: on default traffic it stays `keep_testing`.
fn default_canary_effect(outcome: &str) -> f64 {
    match outcome {
        "reply" => 0.10,
        "positive_reply" => -0.60,
        "meeting_booked" | "opportunity_created" => 0.15,
        _ => 0.0,
    }
}

/// Every parameter of a corpus. Serialised into the manifest's `source`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthParams {
    pub generator: String,
    pub generator_version: u32,
    pub seed: u64,
    pub accounts: u64,
    pub start: String,
    pub end: String,
    /// Share of accounts that are prospects (no archetype, never customers).
    pub prospect_share: f64,
    /// Archetype → weight among customers.
    pub mix: BTreeMap<String, f64>,
    /// Fault class → rate (per account, or per month for month-level classes).
    pub fault_rates: BTreeMap<String, f64>,
    pub canary: CanaryParams,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanaryParams {
    pub experiment_id: String,
    pub control_model: String,
    pub variant_model: String,
    /// Share of accounts enrolled in the experiment.
    pub share: f64,
    /// Length of the experiment, ending at `end`, and of the pre-period before it.
    pub weeks: u32,
    pub effects: BTreeMap<String, f64>,
    /// Share of enrolled accounts assigned to the variant (0.5 by design). Serialised only
    /// when it differs, so corpora made before it existed keep their manifests.
    #[serde(default = "half", skip_serializing_if = "is_half")]
    pub variant_share: f64,
    /// σ of the log-normal account responsiveness (mean 1) that multiplies the reply
    /// probability in both periods: how much accounts differ, and so how much an account's
    /// pre-period says about its experiment period. Serialised only when not 0.5.
    #[serde(default = "half", skip_serializing_if = "is_half")]
    pub responsiveness_sigma: f64,
}

fn half() -> f64 {
    0.5
}

fn is_half(v: &f64) -> bool {
    *v == 0.5
}

impl Default for SynthParams {
    fn default() -> Self {
        SynthParams {
            generator: GENERATOR.into(),
            generator_version: GENERATOR_VERSION,
            seed: 42,
            accounts: 2_000,
            start: "2024-01-01".into(),
            end: "2025-12-31".into(),
            prospect_share: 0.2,
            mix: Archetype::ALL
                .iter()
                .map(|a| (a.name().to_string(), a.default_weight()))
                .collect(),
            fault_rates: FaultClass::ALL
                .iter()
                .map(|f| (f.name().to_string(), f.default_rate()))
                .collect(),
            canary: CanaryParams {
                experiment_id: "exp-agent-canary-1".into(),
                control_model: "gtm-agent-3.2".into(),
                variant_model: "gtm-agent-3.3-rc1".into(),
                share: 0.5,
                weeks: 6,
                effects: CANARY_OUTCOMES
                    .iter()
                    .map(|o| (o.to_string(), default_canary_effect(o)))
                    .collect(),
                variant_share: 0.5,
                responsiveness_sigma: 0.5,
            },
        }
    }
}

/// Validated, typed view of [`SynthParams`].
#[derive(Debug, Clone)]
pub struct Resolved {
    pub seed: u64,
    pub accounts: u64,
    pub start: Day,
    pub end: Day,
    /// The day after `end`: the corpus' `as_of` (midnight UTC).
    pub as_of: Day,
    pub prospect_share: f64,
    pub mix: Vec<(Archetype, f64)>,
    pub fault_rates: BTreeMap<FaultClass, f64>,
    pub canary: CanaryParams,
}

/// Shortest window in which every archetype's story fits (spikes, two seasonal cycles, a
/// champion's departure with 60 days either side).
pub const MIN_WINDOW_DAYS: i32 = 300;

impl SynthParams {
    pub fn resolve(&self) -> Result<Resolved> {
        if self.generator != GENERATOR {
            return Err(Error::usage(format!(
                "generator `{}` is not {GENERATOR}",
                self.generator
            )));
        }
        if self.accounts == 0 {
            return Err(Error::usage("--accounts must be at least 1"));
        }
        if self.accounts > 9_000_000 {
            return Err(Error::usage("--accounts must be at most 9,000,000"));
        }
        let start = Day::parse(&self.start)?;
        let end = Day::parse(&self.end)?;
        if end < start {
            return Err(Error::usage(format!(
                "--end {} is before --start {}",
                self.end, self.start
            )));
        }
        if end.minus(start) + 1 < MIN_WINDOW_DAYS {
            return Err(Error::usage_hint(
                format!(
                    "the window {}..{} is {} days; it must be at least {MIN_WINDOW_DAYS}",
                    self.start,
                    self.end,
                    end.minus(start) + 1
                ),
                "archetype stories (two seasonal cycles, a champion leaving with 60 days either side) need ~10 months",
            ));
        }
        if !(0.0..1.0).contains(&self.prospect_share) {
            return Err(Error::usage("--prospect-share must be in [0, 1)"));
        }
        let mut mix = Vec::new();
        for (name, w) in &self.mix {
            let a = Archetype::parse(name).ok_or_else(|| {
                unknown("archetype", name, Archetype::ALL.iter().map(|a| a.name()))
            })?;
            if !w.is_finite() || *w < 0.0 {
                return Err(Error::usage(format!(
                    "archetype weight for `{name}` must be a non-negative number"
                )));
            }
            mix.push((a, *w));
        }
        mix.sort_by_key(|(a, _)| *a);
        if mix.iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
            return Err(Error::usage(
                "--mix needs at least one archetype with a positive weight",
            ));
        }
        let mut fault_rates = BTreeMap::new();
        for (name, r) in &self.fault_rates {
            let f = FaultClass::parse(name).ok_or_else(|| {
                unknown(
                    "fault class",
                    name,
                    FaultClass::ALL.iter().map(|f| f.name()),
                )
            })?;
            if !r.is_finite() || *r < 0.0 || *r > 1.0 {
                return Err(Error::usage(format!(
                    "fault rate for `{name}` must be in [0, 1]"
                )));
            }
            fault_rates.insert(f, *r);
        }
        let c = &self.canary;
        if !(0.0..=1.0).contains(&c.share) {
            return Err(Error::usage("--canary-share must be in [0, 1]"));
        }
        if !(c.variant_share > 0.0 && c.variant_share < 1.0) {
            return Err(Error::usage("--canary-variant-share must be in (0, 1)"));
        }
        if !(0.0..=3.0).contains(&c.responsiveness_sigma) {
            return Err(Error::usage(
                "--canary-responsiveness-sigma must be in [0, 3]",
            ));
        }
        if c.weeks == 0 || (c.weeks as i32) * 14 > end.minus(start) {
            return Err(Error::usage(
                "--canary-weeks must be at least 1 and the experiment plus its pre-period must fit in the window",
            ));
        }
        for (o, e) in &c.effects {
            if !CANARY_OUTCOMES.contains(&o.as_str()) {
                return Err(unknown(
                    "canary outcome",
                    o,
                    CANARY_OUTCOMES.iter().copied(),
                ));
            }
            if !e.is_finite() || *e <= -1.0 || *e > 5.0 {
                return Err(Error::usage(format!(
                    "canary effect for `{o}` must be in (-1, 5]"
                )));
            }
        }
        Ok(Resolved {
            seed: self.seed,
            accounts: self.accounts,
            start,
            end,
            as_of: end.plus(1),
            prospect_share: self.prospect_share,
            mix,
            fault_rates,
            canary: c.clone(),
        })
    }

    /// Apply `name=value,name=value` to a map with a closed set of keys.
    pub fn set_pairs(
        map: &mut BTreeMap<String, f64>,
        spec: &str,
        what: &str,
        known: &[&str],
    ) -> Result<()> {
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                Error::usage(format!("`{pair}` is not NAME=VALUE in the {what} list"))
            })?;
            let k = k.trim();
            if !known.contains(&k) {
                return Err(unknown(what, k, known.iter().copied()));
            }
            let v: f64 = v.trim().parse().map_err(|_| {
                Error::usage(format!("{what} `{k}`: `{}` is not a number", v.trim()))
            })?;
            map.insert(k.to_string(), v);
        }
        Ok(())
    }
}

fn unknown<'a>(what: &str, name: &str, known: impl Iterator<Item = &'a str>) -> Error {
    let list: Vec<&str> = known.collect();
    Error::usage_hint(
        format!("unknown {what} `{name}`"),
        format!("known: {}", list.join(", ")),
    )
}

impl Resolved {
    pub fn rate(&self, f: FaultClass) -> f64 {
        self.fault_rates.get(&f).copied().unwrap_or(0.0)
    }

    pub fn effect(&self, outcome: &str) -> f64 {
        self.canary.effects.get(outcome).copied().unwrap_or(0.0)
    }

    pub fn months_in_window(&self) -> i32 {
        self.end.month_index() - self.start.month_index() + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve_and_mix_sums_to_one() {
        let r = SynthParams::default().resolve().unwrap();
        assert_eq!(r.as_of, Day::from_ymd(2026, 1, 1).unwrap());
        assert_eq!(r.mix.len(), 8);
        assert!((r.mix.iter().map(|m| m.1).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(r.months_in_window(), 24);
    }

    #[test]
    fn bad_parameters_are_usage_errors() {
        let p = SynthParams {
            accounts: 0,
            ..SynthParams::default()
        };
        assert!(p.resolve().is_err());
        let p = SynthParams {
            end: "2023-12-31".into(),
            ..SynthParams::default()
        };
        assert!(p.resolve().unwrap_err().to_string().contains("before"));
        let mut p = SynthParams::default();
        p.mix.insert("unicorn".into(), 1.0);
        let e = p.resolve().unwrap_err();
        assert!(e.to_string().contains("unknown archetype `unicorn`"), "{e}");
        let mut m = BTreeMap::new();
        assert!(
            SynthParams::set_pairs(
                &mut m,
                "reply=0.2,meeting=1",
                "canary outcome",
                &CANARY_OUTCOMES
            )
            .is_err()
        );
        SynthParams::set_pairs(&mut m, "reply=0.2", "canary outcome", &CANARY_OUTCOMES).unwrap();
        assert_eq!(m["reply"], 0.2);
    }

    #[test]
    fn params_round_trip_through_json() {
        let p = SynthParams::default();
        let v = serde_json::to_value(&p).unwrap();
        let back: SynthParams = serde_json::from_value(v).unwrap();
        assert_eq!(p, back);
    }
}
