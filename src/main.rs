//! The `triage` binary: parse arguments, run, exit with the code the run chose.

fn main() -> std::process::ExitCode {
    triage::cli::run()
}
