//! The golden-dataset gate (`gtmos eval golden`, SPEC §11): load the datasets the manifest
//! pins, read a prediction file, line it up with the examples (Polars), score each task with
//! bootstrap intervals and a paired baseline comparison, and judge the gate. [`run`] is the
//! whole workflow, recording the result (`workflow.rs`).

mod dataset;
mod gate;
mod predictions;
mod scoring;
mod workflow;

pub use dataset::*;
pub use gate::*;
pub use predictions::*;
pub use scoring::*;
pub use workflow::{GoldenRun, Request, run};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::keys::match_keys;
use super::metrics::{self, Confusion, Interval};
use crate::error::{Error, Result};
use crate::table_io::sha256_file;
