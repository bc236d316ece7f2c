//! The strategy brain's deterministic cores (AGT-903 reads their outputs; it never computes
//! them): TOOL-013, the cohort retention forecaster ([`cohort_forecast`]), and TOOL-015, the
//! gross-profit decomposition ([`gross_profit`]). Both run inside the engine as functions
//! (`cohort_retention_forecast`, `gp_decomposition`), called by the strategy models.

pub mod cohort_forecast;
pub mod gross_profit;
