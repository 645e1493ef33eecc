//! One module per subcommand. Each `run` takes its arguments (resolved
//! through [`super::resolve`]) and the writer its output goes to, and
//! returns the exit code of a run that went through, or the
//! [`super::error::CliError`] that stopped it.

pub(super) mod check;
pub(super) mod completions;
pub(super) mod diagnose;
pub(super) mod docs;
pub(super) mod events;
pub(super) mod explain;
pub(super) mod man;
pub(super) mod new;
pub(super) mod probe;
pub(super) mod serve;
pub(super) mod test;
