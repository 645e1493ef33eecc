//! One small broken file per diagnostic code, for the documentation. The
//! docs show what the checker really prints for each (the file is loaded
//! with the built-in knowledge base at generation time), and a test makes
//! sure each example still yields its code, so the two cannot drift. A
//! problem that needs another file to show (a name used twice, a macro)
//! has that file in its example, before the one it is found in.

use std::sync::Arc;

use crate::diagnostic::{Code, FileProblems, FileReport};
use crate::rules::lint::LintLevels;
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

/// The start of a format file, to which an example adds what it is about.
const FORMAT: &str = "name = \"example\"\ntitle = \"an example\"\nkind = \"lines\"\npaths = [\"**/example.log\"]\n";

/// The files of the example of `code` as (file name, text), the file that
/// shows the problem last; the text of a rule file gets [`TESTS`] appended
/// unless the example is about tests.
#[expect(
    clippy::too_many_lines,
    reason = "one arm per diagnostic code, each a small file; a table of them reads best whole"
)]
fn example(code: Code) -> Option<Vec<(&'static str, String)>> {
    let rule_with_id = |id: &str, body: &str| {
        format!("id = \"{id}\"\ntitle = \"example\"\nseverity = \"warning\"\nremediation = \"-\"\n{body}\n")
    };
    let rule = |body: &str| rule_with_id("EX-1", body);
    let tested = |body: &str| format!("{}{TESTS}", rule(body));
    let q = "[queries]\nfull = '''syslog where message contains \"disk full\"'''";
    let levels = |values: &str| {
        format!("{FORMAT}patterns = ['''^(?P<level>[A-Z]+) (?P<msg>.*)''']\nsamples = ['ERROR disk full']\n[levels]\nfield = \"level\"\n{values}\n")
    };
    let file = match code {
        Code::Duplicate => return Some(vec![
            ("formats/example.toml", format!("{FORMAT}patterns = ['''^(?P<msg>.*)''']\n")),
            ("formats/example-copy.toml", format!("{FORMAT}patterns = ['''^(?P<msg>.*)''']\n")),
        ]),
        Code::RecursiveMacro => return Some(vec![
            (
                "macros.toml",
                "[predicates]\nfull_disk = '''message contains \"disk full\" and not full_disk'''\n".to_string(),
            ),
            (
                "EX-1.toml",
                tested("condition = '''full'''\n[queries]\nfull = '''syslog where full_disk'''"),
            ),
        ]),
        Code::ExplainsCycle => return Some(vec![
            (
                "EX-2.toml",
                format!(
                    "{}{TESTS}",
                    rule_with_id("EX-2", &format!("explains = [\"EX-1\"]\ncondition = '''full'''\n{q}"))
                ),
            ),
            ("EX-1.toml", tested(&format!("explains = [\"EX-2\"]\ncondition = '''full'''\n{q}"))),
        ]),
        Code::TomlSyntax => ("EX-1.toml", "id = \"EX-1\"\ntitle = \"a string that never ends\n".to_string()),
        Code::UnknownKey => ("EX-1.toml", tested(&format!("severty = \"error\"\ncondition = '''full'''\n{q}"))),
        Code::MissingKey => (
            "EX-1.toml",
            format!("id = \"EX-1\"\ntitle = \"no condition\"\nseverity = \"warning\"\nremediation = \"-\"\n{TESTS}"),
        ),
        Code::InvalidValue => ("EX-1.toml", tested(&format!("tags = \"disk\"\ncondition = '''full'''\n{q}"))),
        Code::UnknownWord => (
            "EX-1.toml",
            format!(
                "id = \"EX-1\"\ntitle = \"example\"\nseverity = \"major\"\nremediation = \"-\"\ncondition = '''full'''\n{q}\n{TESTS}"
            ),
        ),
        Code::InvalidName => (
            "formats/example.toml",
            format!("{}patterns = ['''^(?P<msg>.*)''']\n", FORMAT.replace("\"example\"", "\"my-example\"")),
        ),
        Code::InvalidGlob => (
            "formats/example.toml",
            format!(
                "{}patterns = ['''^(?P<msg>.*)''']\n",
                FORMAT.replace("**/example.log", "**/example[.log")
            ),
        ),
        Code::InvalidVersionRange => (
            "EX-1.toml",
            tested(&format!(
                "applies_to = {{ product = \"sdwan-manager\", versions = \">=twenty\" }}\ncondition = '''full'''\n{q}"
            )),
        ),
        Code::InvalidReference => (
            "EX-1.toml",
            tested(&format!("references = [\"docs/disk-full.md\"]\ncondition = '''full'''\n{q}")),
        ),
        Code::NotALint => ("triage.toml", "[lints]\nW102 = \"allow\"\nE101 = \"allow\"\n".to_string()),
        Code::ReservedField => (
            "formats/example.toml",
            format!("{FORMAT}patterns = ['''^(?P<file>\\S+): (?P<msg>.*)''']\nmessage = \"msg\"\n"),
        ),
        Code::UncapturedField => (
            "formats/example.toml",
            format!("{FORMAT}patterns = ['''^(?P<msg>.*)''']\n[fields]\npid = \"integer\"\n"),
        ),
        Code::ProductWithoutVersion => (
            "formats/example.toml",
            format!("{FORMAT}product = \"example-app\"\npatterns = ['''^(?P<msg>.*)''']\n"),
        ),
        Code::DuplicateLevel => ("formats/example.toml", levels("error = [\"ERROR\"]\nwarning = [\"WARN\", \"ERROR\"]")),
        Code::EmptyLevel => ("formats/example.toml", levels("error = [\"ERROR\", \"\"]")),
        // No file of the knowledge base is ever unreadable once listed:
        // a directory that cannot be read fails the run instead.
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
        Code::UnusedMacro => (
            "macros.toml",
            "[predicates]\nfull_disk = '''message contains \"disk full\"'''\n".to_string(),
        ),
        Code::MissingTest => ("EX-1.toml", rule(&format!("condition = '''full'''\n{q}"))),
        Code::StableUntested => ("EX-1.toml", rule(&format!("status = \"stable\"\ncondition = '''full'''\n{q}"))),
        Code::ConstantCondition => ("EX-1.toml", tested(&format!("condition = '''full and no full'''\n{q}"))),
        Code::UnstatedValue => (
            "EX-1.toml",
            tested(&format!(
                "condition = '''full or spare'''\nmessage = \"the disk is full ({{spare.count}} spare disks)\"\n{q}\nspare = '''syslog where message contains \"spare\"'''"
            )),
        ),
        Code::FallbackLikeFilter => (
            "EX-1.toml",
            tested(&format!("condition = '''full'''\nmessage = \"disk full on {{full.hostname|uniq}}\"\n{q}")),
        ),
        // Found by running the rules' tests against each other: loading
        // files does not show it.
        Code::UnrelatedOverlap => return None,
    };
    Some(vec![file])
}

/// Why `code` has no example, for the codes that have none.
pub(crate) fn why_none(code: Code) -> Option<&'static str> {
    match code {
        Code::Io => Some("a rule or format file that cannot be read stops the run before any file is checked"),
        Code::UnrelatedOverlap => {
            Some("`triage check` finds it by running every rule's tests with the whole knowledge base, not by reading a file")
        }
        _ => None,
    }
}

/// What the checker prints for the example of `code`, with only that
/// code's problems shown; `None` for codes no example can show (an
/// unreadable file, and rules that overlap only when their tests run).
pub(crate) fn rendered(code: Code) -> Option<(String, String)> {
    let example = example(code)?;
    let path = |name: &str| format!("example/{name}");
    let (last_name, _) = example.last()?;
    let shown_path = path(last_name);
    let file = if last_name.ends_with("triage.toml") {
        let (_, text) = example.last()?;
        LintLevels::default().read_config(&shown_path, Arc::from(text.as_str()))?
    } else {
        let mut files = embedded_files(None);
        files.extend(example.iter().map(|(name, text)| KbFile {
            path: path(name),
            base_dir: None,
            text: Arc::from(text.as_str()),
            layer: 1,
        }));
        let kb = load(&files);
        kb.problems.into_iter().find(|f| f.path == shown_path)?
    };
    let own: Vec<_> = file.problems.iter().filter(|p| p.code == code).cloned().collect();
    if own.is_empty() {
        return None;
    }
    let shown = FileProblems::new(&shown_path, file.text.clone(), own);
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor()).with_width(100);
    let mut out = String::new();
    handler.render_report(&mut out, &FileReport::new(&shown)).ok()?;
    // The tests only keep other warnings away; the problem is above them.
    let display = |text: &String| {
        text.strip_suffix(TESTS)
            .map_or(text.clone(), |t| format!("{}\n# … [[test]] tables", t.trim_end()))
    };
    let display = match example.as_slice() {
        [(_, text)] => display(text),
        several => several
            .iter()
            .map(|(name, text)| format!("# {}\n{}", path(name), display(text).trim_end()))
            .collect::<Vec<_>>()
            .join("\n\n"),
    };
    Some((display, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code that a single file can show has an example, and the
    /// example still yields it.
    #[test]
    fn each_example_yields_its_code() {
        for code in Code::ALL {
            if why_none(code).is_some() {
                assert!(example(code).is_none());
                continue;
            }
            let (_, shown) = rendered(code).unwrap_or_else(|| panic!("the example of {code} does not yield it"));
            assert!(shown.contains(code.as_str()), "{code}: {shown}");
        }
    }
}
