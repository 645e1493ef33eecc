//! Shell completions and man pages, generated from the clap definitions in
//! [`crate::cli`] at run time, so that they cannot drift from the options
//! the binary really takes: a new flag appears in both the next time they
//! are generated.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The name completions are registered under: the binary's.
const BIN: &str = "triage";

/// Writes the completion script for `shell`.
pub(super) fn write_completions(shell: Shell, out: &mut dyn Write) {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, BIN, out);
}

/// Writes the man page of `triage` itself (its options and the list of
/// subcommands) as roff.
pub(super) fn write_main_page(out: &mut dyn Write) -> io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Writes `triage.1` and one page per subcommand (`triage-check.1`, …)
/// into `dir`, creating it; returns the files written, main page first.
pub(super) fn write_pages(dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    // Built, the subcommands carry their full names (`triage-check`),
    // which become the page names and their NAME sections.
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_page_tree(command, dir, &mut written)?;
    Ok(written)
}

fn write_page_tree(command: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> io::Result<()> {
    let subcommands: Vec<clap::Command> = command
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    written.push(clap_mangen::Man::new(command).generate_to(dir)?);
    for sub in subcommands {
        write_page_tree(sub, dir, written)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subcommand_gets_a_page_named_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let pages = write_pages(dir.path()).unwrap();
        let names: Vec<String> = pages
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names[0], "triage.1");
        for sub in Cli::command().get_subcommands() {
            let page = format!("triage-{}.1", sub.get_name());
            assert!(names.contains(&page), "{page} missing from {names:?}");
        }
        let check = std::fs::read_to_string(dir.path().join("triage-check.1")).unwrap();
        assert!(check.contains("triage\\-check"), "{check}");
    }
}
