//! The one error type of gtmos, split by who is at fault, and its mapping to exit codes
//! (SPEC §15: 0 success, 1 a gate / contract / SLO failure, 2 usage or operational error).
//!
//! Gate outcomes (exit 1) are not errors: commands return [`Outcome`] for them. Everything in
//! [`Error`] exits 2. Messages are short fragments that name the file, table, column and row
//! where known; a fix goes in `hint`.

use std::path::{Path, PathBuf};

/// `Result` with gtmos' error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a command concluded, when it ran to the end without an operational error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exit 0: done (warnings allowed).
    Success,
    /// Exit 1: a gate, contract, drift or SLO check failed; the reason was printed.
    GateFailed,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::GateFailed => 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments or flag values.
    #[error("{message}")]
    Usage {
        message: String,
        hint: Option<String>,
    },

    /// A file or directory could not be read or written.
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Input data that is not what it must be: a missing table or column, a wrong type, a
    /// corrupt Parquet file, a manifest that does not describe its files.
    /// Boxed, so that every `Result` stays small.
    #[error("{0}")]
    Data(Box<DataError>),

    /// A file under `pipelines/` that does not parse or does not make sense.
    #[error("{path}: {message}")]
    Pipeline {
        path: PathBuf,
        message: String,
        hint: Option<String>,
    },

    /// Arrow or Parquet failed on something gtmos produced or read.
    #[error("{context}")]
    Arrow {
        context: String,
        #[source]
        source: arrow::error::ArrowError,
    },

    /// The SQL engine failed while running a step; `context` names the pipeline file and step.
    #[error("{context}")]
    Engine {
        context: String,
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },

    /// A Parquet file could not be read or written.
    #[error("{context}")]
    Parquet {
        context: String,
        #[source]
        source: parquet::errors::ParquetError,
    },

    /// An invariant gtmos itself should guarantee did not hold.
    #[error("internal error: {0} (this is a bug in gtmos; please report it)")]
    Internal(String),
}

/// Where input data is bad and how: the file, table, column and row as far as known.
#[derive(Debug, Default)]
pub struct DataError {
    pub path: Option<PathBuf>,
    pub table: Option<String>,
    pub column: Option<String>,
    pub row: Option<u64>,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for DataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut at = Vec::new();
        if let Some(p) = &self.path {
            at.push(p.display().to_string());
        }
        if let Some(t) = &self.table {
            at.push(format!("table `{t}`"));
        }
        if let Some(c) = &self.column {
            at.push(format!("column `{c}`"));
        }
        if let Some(r) = self.row {
            at.push(format!("row {r}"));
        }
        if at.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", at.join(", "), self.message)
        }
    }
}

impl Error {
    /// Exit code for an error: always 2 (usage or operational), see SPEC §15.
    pub fn exit_code(&self) -> u8 {
        2
    }

    /// A `hint:` line to print after the message, if the error carries one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Usage { hint, .. } | Error::Pipeline { hint, .. } => hint.as_deref(),
            Error::Data(d) => d.hint.as_deref(),
            _ => None,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: None,
        }
    }

    pub fn usage_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A data error; refine it with the builder methods below.
    pub fn data(message: impl Into<String>) -> Self {
        Error::Data(Box::new(DataError {
            message: message.into(),
            ..DataError::default()
        }))
    }

    pub fn pipeline(path: &Path, message: impl Into<String>) -> Self {
        Error::Pipeline {
            path: path.to_path_buf(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_path(mut self, p: &Path) -> Self {
        if let Error::Data(d) = &mut self {
            d.path = Some(p.to_path_buf());
        }
        self
    }

    pub fn with_table(mut self, t: &str) -> Self {
        if let Error::Data(d) = &mut self {
            d.table = Some(t.to_string());
        }
        self
    }

    pub fn with_column(mut self, c: &str) -> Self {
        if let Error::Data(d) = &mut self {
            d.column = Some(c.to_string());
        }
        self
    }

    pub fn with_row(mut self, r: u64) -> Self {
        if let Error::Data(d) = &mut self {
            d.row = Some(r);
        }
        self
    }

    pub fn with_hint(mut self, h: impl Into<String>) -> Self {
        match &mut self {
            Error::Usage { hint, .. } | Error::Pipeline { hint, .. } => *hint = Some(h.into()),
            Error::Data(d) => d.hint = Some(h.into()),
            _ => {}
        }
        self
    }

    pub fn arrow(context: impl Into<String>, source: arrow::error::ArrowError) -> Self {
        Error::Arrow {
            context: context.into(),
            source,
        }
    }

    pub fn parquet(context: impl Into<String>, source: parquet::errors::ParquetError) -> Self {
        Error::Parquet {
            context: context.into(),
            source,
        }
    }

    /// Whether this error is a broken pipe on stdout (a closed `| head`), which is not an error.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Print an error and its cause chain to stderr the way every command does.
pub fn report(err: &Error) {
    eprintln!("error: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    if let Some(h) = err.hint() {
        eprintln!("hint: {h}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_stays_small() {
        // The large variant is boxed; clippy's `result_large_err` fires at 128 bytes.
        assert!(
            std::mem::size_of::<Error>() <= 88,
            "Error is {} bytes",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn a_data_error_names_where_and_keeps_its_hint() {
        let e = Error::data("not a number")
            .with_path(Path::new("snap/usage.parquet"))
            .with_table("usage")
            .with_column("units")
            .with_row(7)
            .with_hint("fix the export");
        assert_eq!(
            e.to_string(),
            "snap/usage.parquet, table `usage`, column `units`, row 7: not a number"
        );
        assert_eq!(e.hint(), Some("fix the export"));
        assert_eq!(Error::data("bare").to_string(), "bare");
    }
}
