//! The one integration-test binary (one link on 2 cores): CLI, snapshot and synth tests.
#![allow(clippy::type_complexity)] // local tuples of expected values read better in place

mod brain_eval;
mod build;
mod canary;
mod cli;
#[cfg(feature = "distributed")]
mod cluster;
mod common;
mod decisions;
mod eval;
mod faults;
mod first_run;
mod incremental;
mod ingest_rules;
mod metrics;
mod nights;
mod recognition;
mod report;
#[cfg(feature = "distributed")]
mod s3;
mod scores;
mod snapshot;
mod strategy;
mod synth;
mod synth_faults;
mod unit_tests;
mod views;
