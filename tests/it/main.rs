//! The one integration-test binary (one link on 2 cores): CLI, snapshot and synth tests.

mod cli;
mod common;
mod ingest_rules;
mod snapshot;
mod synth;
mod synth_faults;
