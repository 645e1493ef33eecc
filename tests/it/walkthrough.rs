//! Follows README's "Write your first rule" step by step: writes the files
//! it shows, runs the commands it shows, and checks that each output holds
//! the lines it shows. If the walkthrough and the tool drift apart, this
//! fails.
//!
//! Markers in README.md (HTML comments, invisible when rendered):
//! - `<!-- walkthrough:file PATH -->` before a fenced block: write the block to PATH;
//! - `<!-- walkthrough:run -->` (or `run exit=N`) before a fenced block: run
//!   each `triage …` line in it, expecting exit code 0 (or N);
//! - `<!-- walkthrough:expect -->` before a fenced block: each of its lines
//!   must appear in the output of the command before.

use crate::common::triage;

/// A command line split into words; quotes group words, as a shell would.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut in_word = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The steps of the walkthrough: (marker, fenced block).
fn steps(readme: &str) -> Vec<(String, String)> {
    let mut steps = Vec::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(marker) = line
            .trim()
            .strip_prefix("<!-- walkthrough:")
            .and_then(|m| m.strip_suffix("-->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a fenced block follows a walkthrough marker");
        assert!(
            fence.starts_with("```"),
            "a fenced block must follow `{line}`, not `{fence}`"
        );
        let mut block = String::new();
        for l in lines.by_ref() {
            if l.starts_with("```") {
                break;
            }
            block.push_str(l);
            block.push('\n');
        }
        steps.push((marker.trim().to_string(), block));
    }
    steps
}

#[test]
fn the_readme_walkthrough_works_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let steps = steps(&readme);
    assert!(steps.len() >= 10, "the walkthrough has {} steps", steps.len());
    let dir = tempfile::tempdir().unwrap();
    let mut last_output: Option<(String, String)> = None;
    let mut commands = 0;
    for (marker, block) in steps {
        if let Some(path) = marker.strip_prefix("file ") {
            let path = dir.path().join(path.trim());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, block).unwrap();
        } else if let Some(run) = marker.strip_prefix("run") {
            let code: i32 = run.trim().strip_prefix("exit=").map_or(0, |n| n.parse().unwrap());
            for line in block.lines().filter(|l| !l.trim().is_empty()) {
                let args = words(line);
                assert_eq!(args[0], "triage", "walkthrough commands run triage: `{line}`");
                let out = triage()
                    .current_dir(dir.path())
                    // Wide enough that no message is wrapped.
                    .env("COLUMNS", "250")
                    .args(&args[1..])
                    .assert()
                    .code(code)
                    .get_output()
                    .clone();
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                last_output = Some((line.to_string(), text));
                commands += 1;
            }
        } else if marker == "expect" {
            let (command, output) = last_output.as_ref().expect("an expect block follows a run block");
            for want in block.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()) {
                assert!(
                    output.lines().any(|l| l.contains(want.trim_start())
                        && l.starts_with(&want[..want.len() - want.trim_start().len()])),
                    "`{command}` should print\n{want}\nbut printed\n{output}"
                );
            }
        } else {
            panic!("unknown walkthrough marker `{marker}`");
        }
    }
    assert!(commands >= 5, "only {commands} commands ran");
}

#[test]
fn words_are_split_as_a_shell_would() {
    assert_eq!(
        words("triage new rule 'MY 1' --sample \"a b\""),
        ["triage", "new", "rule", "MY 1", "--sample", "a b"]
    );
}
