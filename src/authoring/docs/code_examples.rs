//! One small broken file per diagnostic code, for the documentation. The
//! docs show what the checker really prints for each (the file is loaded
//! with the built-in knowledge base at generation time), and a test makes
//! sure each example still yields its code, so the two cannot drift.

use std::sync::Arc;

use crate::diagnostic::{Code, FileProblems, FileReport};
use crate::rules::{embedded_files, load, KbFile};

/// A rule with one test of each kind, so that examples of other codes do
/// not also raise "missing test" warnings.
const TESTS: &str = r#"
[[test]]
name = "fires"
expect = "hit"
[test.files]
"var/log/messages" = "Jan 13 11:40:12 host app[1]: disk full\n"

[[test]]
name = "quiet"
expect = "no_hit"
[test.files]
"var/log/messages" = "Jan 13 11:40:12 host app[1]: all fine\n"
"#;

/// (code, file name, text); the text of a rule file gets [`TESTS`] appended
/// unless the example is about tests.
fn example(code: Code) -> Option<(&'static str, String)> {
    let rule = |body: &str| {
        format!("id = \"EX-1\"\ntitle = \"example\"\nseverity = \"warning\"\nremediation = \"-\"\n{body}\n")
    };
    let tested = |body: &str| format!("{}{TESTS}", rule(body));
    let q = "[queries]\nfull = '''syslog where message contains \"disk full\"'''";
    Some(match code {
        Code::TomlSyntax => ("EX-1.toml", "id = \"EX-1\"\ntitle = \"a string that never ends\n".to_string()),
        Code::UnknownKey => ("EX-1.toml", tested(&format!("severty = \"error\"\ncondition = '''full'''\n{q}"))),
        Code::MissingKey => (
            "EX-1.toml",
            format!("id = \"EX-1\"\ntitle = \"no condition\"\nseverity = \"warning\"\nremediation = \"-\"\n{TESTS}"),
        ),
        Code::InvalidValue => (
            "EX-1.toml",
            format!(
                "id = \"EX-1\"\ntitle = \"example\"\nseverity = \"major\"\nremediation = \"-\"\ncondition = '''full'''\n{q}\n{TESTS}"
            ),
        ),
        Code::Duplicate => return None,
        Code::Io => return None,
        Code::Syntax => ("EX-1.toml", tested(&format!("condition = '''(full and count(full) > 2'''\n{q}"))),
        Code::UnknownSource => (
            "EX-1.toml",
            tested("condition = '''full'''\n[queries]\nfull = '''sylog where message contains \"disk full\"'''"),
        ),
        Code::UnknownField => (
            "EX-1.toml",
            tested("condition = '''full'''\n[queries]\nfull = '''syslog where mesage contains \"disk full\"'''"),
        ),
        Code::TypeMismatch => (
            "EX-1.toml",
            tested("condition = '''full'''\n[queries]\nfull = '''syslog where pid contains \"12\" and message contains \"disk full\"'''"),
        ),
        Code::InvalidRegex => (
            "EX-1.toml",
            tested("condition = '''full'''\n[queries]\nfull = '''syslog where message matches /disk (full|space/'''"),
        ),
        Code::UnknownName => ("EX-1.toml", tested(&format!("condition = '''ful'''\n{q}"))),
        Code::InvalidLiteral => (
            "EX-1.toml",
            tested("condition = '''full'''\n[queries]\nfull = '''tcpdump where src == 10.0.0.256 and text contains \"Flags\"'''"),
        ),
        Code::UnknownPlaceholder => (
            "EX-1.toml",
            tested(&format!("condition = '''full'''\nmessage = \"{{full.hostname}} is full\"\n{q}")),
        ),
        Code::RecursiveMacro => return None,
        Code::SampleMismatch => (
            "formats/example.toml",
            "name = \"example\"\ntitle = \"an example\"\nkind = \"lines\"\npaths = [\"**/example.log\"]\n\
             patterns = ['''^(?P<level>[A-Z]+) (?P<msg>.*)''']\nsamples = ['lowercase line']\n"
                .to_string(),
        ),
        Code::InvalidTimestamp => (
            "formats/example.toml",
            "name = \"example\"\ntitle = \"an example\"\nkind = \"lines\"\npaths = [\"**/example.log\"]\n\
             patterns = ['''^(?P<ts>\\S+) (?P<msg>.*)''']\nsamples = ['2023-01-13T17:29:03 started']\n\
             [timestamp]\nfield = \"ts\"\nformat = \"%Y-%m-%dT%H:%M:%S\"\nzone = \"Mars/Olympus\"\n"
                .to_string(),
        ),
        Code::UnknownExplains => (
            "EX-1.toml",
            tested(&format!("explains = [\"SDWAN-SYM-01\"]\ncondition = '''full'''\n{q}")),
        ),
        Code::UnusedQuery => (
            "EX-1.toml",
            tested(&format!("condition = '''full'''\n{q}\nspare = '''syslog where message contains \"spare\"'''")),
        ),
        Code::SlowQuery => (
            "EX-1.toml",
            tested("condition = '''full'''\n[queries]\nfull = '''syslog where message matches /[0-9]{4,}/'''"),
        ),
        Code::UnusedMacro => return None,
        Code::MissingTest => ("EX-1.toml", rule(&format!("condition = '''full'''\n{q}"))),
        Code::StableUntested => ("EX-1.toml", rule(&format!("status = \"stable\"\ncondition = '''full'''\n{q}"))),
        Code::ConstantCondition => ("EX-1.toml", tested(&format!("condition = '''full and no full'''\n{q}"))),
        Code::UnstatedValue => (
            "EX-1.toml",
            tested(&format!(
                "condition = '''full or spare'''\nmessage = \"the disk is full ({{spare.count}} spare disks)\"\n{q}\nspare = '''syslog where message contains \"spare\"'''"
            )),
        ),
        // Found by running the rules' tests against each other: no single file shows it.
        Code::UnrelatedOverlap => return None,
        // Needs two rules that name each other.
        Code::ExplainsCycle => return None,
    })
}

/// What the checker prints for the example of `code`, with only that
/// code's problems shown; `None` for codes an example file cannot show
/// (unreadable files, and problems that need several files).
pub(crate) fn rendered(code: Code) -> Option<(String, String)> {
    let (name, text) = example(code)?;
    let path = format!("example/{name}");
    let mut files = embedded_files(None);
    files.push(KbFile {
        path: path.clone(),
        base_dir: None,
        text: Arc::from(text.as_str()),
        layer: 1,
    });
    let kb = load(&files);
    let file = kb.problems.iter().find(|f| f.path == path)?;
    let own: Vec<_> = file.problems.iter().filter(|p| p.code == code).cloned().collect();
    if own.is_empty() {
        return None;
    }
    let shown = FileProblems::new(&path, file.text.clone(), own);
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    handler.render_report(&mut out, &FileReport::new(&shown)).ok()?;
    // The tests only keep other warnings away; the problem is above them.
    let display = text
        .strip_suffix(TESTS)
        .map_or(text.clone(), |t| format!("{}\n# … [[test]] tables", t.trim_end()));
    Some((display, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code that a single file can show has an example, and the
    /// example still yields it.
    #[test]
    fn each_example_yields_its_code() {
        let without = [
            Code::Duplicate,
            Code::Io,
            Code::RecursiveMacro,
            Code::UnusedMacro,
            Code::UnrelatedOverlap,
            Code::ExplainsCycle,
        ];
        for code in Code::ALL {
            if without.contains(&code) {
                assert!(example(code).is_none());
                continue;
            }
            let (_, shown) = rendered(code).unwrap_or_else(|| panic!("the example of {code} does not yield it"));
            assert!(shown.contains(code.as_str()), "{code}: {shown}");
        }
    }
}
