//! One module per subcommand. Each `run` takes its arguments (resolved
//! through [`super::resolve`]) and the writer its output goes to, and
//! returns the exit code of a run that went through, or the
//! [`super::error::CliError`] that stopped it.

pub mod check;
pub mod completions;
pub mod diagnose;
pub mod docs;
pub mod events;
pub mod explain;
pub mod man;
pub mod new;
pub mod serve;
pub mod test;
