//! One file per subcommand: each turns resolved arguments into library calls and prints the
//! result (stdout for data, stderr for progress), returning the command's [`Outcome`].

pub mod build;
pub mod canary;
#[cfg(feature = "distributed")]
pub mod cluster;
pub mod compile;
pub mod decisions;
pub mod eval;
pub mod freshness;
pub mod reconcile;
pub mod reopen;
pub mod snapshot;
pub mod synth;
pub mod test;
pub mod views;

use crate::cli::{Cli, Command};
use crate::error::{Outcome, Result};

pub fn run(cli: Cli) -> Result<Outcome> {
    crate::printer::set_quiet(cli.quiet);
    // A command given an `s3://` location works on a local mirror; what it changed is sent
    // back only when it ran to the end (an outcome, even a failed gate, is a finished run).
    match command(cli.command) {
        Ok(outcome) => crate::store::finish().map(|()| outcome),
        Err(e) => {
            crate::store::discard();
            Err(e)
        }
    }
}

fn command(command: Command) -> Result<Outcome> {
    match command {
        Command::Build(args) => build::run(args),
        Command::Recognize(args) => build::recognize(args),
        Command::Reconcile(args) => reconcile::run(args),
        Command::Reopen(args) => reopen::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Test(args) => test::run(args),
        Command::Freshness(args) => freshness::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Snapshot(cmd) => snapshot::run(cmd),
        Command::Decisions(args) => decisions::run(args),
        Command::Views(args) => views::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Canary(args) => canary::run(args),
        #[cfg(feature = "distributed")]
        Command::Scheduler(args) => cluster::scheduler(args),
        #[cfg(feature = "distributed")]
        Command::Executor(args) => cluster::executor(args),
    }
}

/// Worker threads: the flag, else every core.
/// Worker threads: `--threads` (at least 1, checked by the parser), or all cores.
pub fn threads(flag: Option<u16>) -> usize {
    flag.map(usize::from).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
