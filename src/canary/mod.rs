//! `gtmos canary` (SPEC §12): after the golden gate, a candidate model gets a slice of live
//! traffic against the current one, randomised by account; this module compares the arms.
//! [`stats`] holds the statistics, each checked against scipy or by hand.

pub mod compare;
pub mod simulate;
pub mod stats;
pub mod traffic;
