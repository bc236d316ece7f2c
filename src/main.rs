//! The `gtmos` binary: parse, run, print the error chain, exit with the command's code.

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(gtmos::main_with_args(std::env::args_os()))
}
