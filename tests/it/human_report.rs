//! The human report as a user sees it (no colour, 100 columns): the
//! verdict first, evidence inside its files with real line numbers, root
//! cause above its symptoms, alternatives and what to collect; every
//! evidence record the JSON holds within the shown cap, and every line
//! within the width.

use std::path::{Path, PathBuf};

use crate::common;
use crate::common::kb_with_rules;
use triage::load_layers;
use triage::Report;
use triage::{render, shown_evidence, HumanOptions, SHOWN_EVIDENCE};
use triage::{Engine, RunOptions};
use unicode_width::UnicodeWidthStr;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_cases() -> Vec<PathBuf> {
    let cases = common::corpus_cases("bundle");
    assert!(cases.len() >= 7);
    cases
}

fn builtin_engine() -> Engine {
    Engine::new(load_layers(true, &[], None).unwrap())
}

fn options(width: usize) -> HumanOptions {
    HumanOptions {
        color: false,
        width,
        docs_url: Some("https://docs.example/rules".into()),
        all_inconclusive: false,
    }
}

fn report_of(engine: &Engine, case: &str) -> Report {
    engine.diagnose(&root().join("corpus").join(case).join("bundle"), &RunOptions::default())
}

fn human(case: &str) -> String {
    render(&report_of(&builtin_engine(), case), &options(100))
}

fn assert_fits(text: &str, width: usize, what: &str) {
    for (n, line) in text.lines().enumerate() {
        assert!(
            line.width() <= width,
            "{what}: line {} is {} columns wide (> {width}):\n{line}",
            n + 1,
            line.width()
        );
    }
}

#[test]
fn seed_case() {
    insta::assert_snapshot!(human("seed-lic-001"));
}

#[test]
fn dns_failure_explains_the_symptom() {
    insta::assert_snapshot!(human("net-003-dns"));
}

#[test]
fn old_release() {
    insta::assert_snapshot!(human("lic-005-old-release"));
}

#[test]
fn healthy_bundle_says_so_first_then_what_was_read() {
    let text = human("healthy");
    assert!(text.starts_with("No problem found"), "{text}");
    assert!(text.trim_end().ends_with("No problem found (1 note)"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn syns_without_an_answer_are_all_shown() {
    insta::assert_snapshot!(human("net-001-syn-dropped"));
}

/// The lines of the human report that belong to each diagnosis: from its
/// header to the next diagnosis's header.
fn blocks<'a>(report: &Report, text: &'a str) -> Vec<Vec<&'a str>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut starts = Vec::new();
    let mut from = 0;
    for d in &report.diagnoses {
        let at = (from..lines.len())
            .find(|&i| {
                let l = lines[i].trim();
                l == d.rule_id || l.starts_with(&format!("{} (", d.rule_id))
            })
            .unwrap_or_else(|| panic!("no header for {}:\n{text}", d.rule_id));
        starts.push(at);
        from = at + 1;
    }
    let mut out = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(lines.len());
        out.push(lines[s..end].to_vec());
    }
    out
}

/// Every evidence record the JSON holds, up to the cap the human report
/// shows, appears there as a snippet of its own (its file and line in the
/// snippet's header, its highlighted text under it), and the "N more" note
/// counts exactly the JSON's total minus those shown (testers saw records
/// on adjacent lines vanish: miette joined their snippets and showed one).
#[test]
fn every_shown_evidence_record_appears_with_a_right_count_of_the_rest() {
    let engine = builtin_engine();
    for case in corpus_cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let report = report_of(&engine, &name);
        let text = render(&report, &options(100));
        for (d, block) in report.diagnoses.iter().zip(blocks(&report, &text)) {
            let joined = block.join("\n");
            let (shown, hidden) = shown_evidence(d);
            assert_eq!(shown, d.evidence.len().min(SHOWN_EVIDENCE));
            // One snippet per record, and one more for a record whose match
            // lies past the lines its snippet shows.
            let headers: Vec<&&str> = block.iter().filter(|l| l.contains("╭─[")).collect();
            assert!(headers.len() >= shown, "{name} {}: snippets\n{joined}", d.rule_id);
            for e in d.evidence.iter().take(shown) {
                let base = e.file.rsplit('/').next().unwrap();
                assert!(
                    headers.iter().any(|h| h.contains(&format!("{base}:{}:1]", e.line))),
                    "{name} {}: {}:{} not in {headers:?}",
                    d.rule_id,
                    e.file,
                    e.line
                );
                // The first highlight on a shown line is underlined text.
                let lines_shown: usize = e.text.split('\n').take(6).map(|l| l.len() + 1).sum();
                if let Some(h) = e.highlights.iter().find(|h| h.end <= lines_shown) {
                    let fragment: String = e.text[h.clone()].chars().take(8).collect();
                    assert!(
                        joined.contains(&fragment),
                        "{name} {}: `{fragment}` of line {} not shown\n{joined}",
                        d.rule_id,
                        e.line
                    );
                }
            }
            let note = format!("({hidden} more matching record");
            if hidden > 0 {
                assert!(joined.contains(&note), "{name} {}: no `{note}`\n{joined}", d.rule_id);
            } else {
                assert!(
                    !joined.contains("more matching record"),
                    "{name} {}\n{joined}",
                    d.rule_id
                );
            }
            assert!(d.evidence_total >= d.evidence.len() as u64, "{name} {}", d.rule_id);
        }
    }
}

#[test]
fn every_line_fits_the_width_on_every_corpus_bundle() {
    let engine = builtin_engine();
    for case in corpus_cases() {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let report = report_of(&engine, &name);
        for width in [100, 80, 60] {
            let mut o = options(width);
            assert_fits(&render(&report, &o), width, &format!("{name} at {width}"));
            o.all_inconclusive = true;
            assert_fits(&render(&report, &o), width, &format!("{name} at {width}, all"));
        }
        // The verdict first, wrapped when it is wider than the terminal.
        let text = render(&report, &options(100));
        let mut lines = text.lines();
        let mut verdict = lines.next().unwrap().to_string();
        for more in lines.take_while(|l| l.starts_with("  ") && !l.trim_start().starts_with('…')) {
            verdict = format!("{verdict} {}", more.trim());
        }
        assert_eq!(verdict, report.verdict, "{name}: the run opens with the verdict");
    }
}

/// A rule `id` that fires on syslog records whose message holds `needle`.
fn syslog_rule(id: &str, needle: &str) -> String {
    format!(
        "id = \"{id}\"\ntitle = \"Records holding {needle}\"\nseverity = \"error\"\ncondition = 'q'\n\
         message = \"{{q.count}} record(s)\"\nremediation = \"-\"\n[queries]\n\
         q = 'syslog where message contains \"{needle}\"'\n"
    )
}

/// Lines of thousands of columns, with tabs, control characters and wide
/// characters, are cut around their highlights: every line fits, and the
/// highlighted text is shown.
#[test]
fn long_lines_are_cut_around_their_highlights() {
    let engine = Engine::new(kb_with_rules(&[("X-LONG-001", &syslog_rule("X-LONG-001", "needle"))]));
    let long = format!(
        "Jan 13 11:59:03 host prog[1]: {}needle{} 宽字符宽字符\tneedle \u{1b}[31m{}",
        "a".repeat(1500),
        "b\t".repeat(400),
        "c".repeat(3000)
    );
    let short_after = "Jan 13 11:59:04 host prog[1]: needle at the start of a short line";
    let log = format!("{long}\n{short_after}\n");
    let report = engine.diagnose_files("t", &[("var/log/messages".into(), log)], &RunOptions::default());
    assert_eq!(report.diagnoses.len(), 1, "{report:?}");
    for width in [100, 72, 50] {
        let text = render(&report, &options(width));
        assert_fits(&text, width, &format!("long lines at {width}"));
        assert!(text.contains("needle"), "{text}");
        assert!(
            text.contains("messages:1:1]") && text.contains("messages:2:1]"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "control characters are shown as such: {text}");
    }
}

/// Records on adjacent lines of one file are each a snippet with its own
/// line number (miette joined snippets whose lines touch, and showed only
/// the first record of the joined span).
#[test]
fn records_on_adjacent_lines_are_each_shown() {
    let engine = Engine::new(kb_with_rules(&[("X-ADJ-001", &syslog_rule("X-ADJ-001", "refused"))]));
    let log = (1..=12)
        .map(|i| {
            if (10..=12).contains(&i) {
                format!("Jan 13 11:59:{i:02} host prog[1]: request {i} refused")
            } else {
                format!("Jan 13 11:59:{i:02} host prog[1]: request {i} ok")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let report = engine.diagnose_files("t", &[("var/log/messages".into(), log)], &RunOptions::default());
    let text = render(&report, &options(100));
    for line in 10..=12 {
        assert!(text.contains(&format!("[var/log/messages:{line}:1]")), "{text}");
        assert!(text.contains(&format!("request {line} refused")), "{text}");
    }
    assert!(!text.contains("more matching"), "{text}");
}

const SEED_LIKE: &str =
    "Jan 13 11:59:03 ssm backend[2211]: method=POST path=/oauth/token format=json status=403 duration=36.42\n\
Jan 13 11:59:03 ssm manager[1]: Smart Account authentication failed for user admin\n";

/// The report of `log` with the synthetic cause, symptom, general rule and
/// seven alternatives, each needing a source of its own.
fn judgement_report(log: &str) -> Report {
    let engine = Engine::new(common::judgement_kb());
    engine.diagnose_files("t", &[("var/log/messages".into(), log.into())], &RunOptions::default())
}

/// A cause with an alternative and how to tell them apart, the symptom it
/// explains with the remediation for that case, and a general rule it
/// rules out.
#[test]
fn cause_with_alternative_symptom_and_excluded_rule() {
    let report = judgement_report(SEED_LIKE);
    assert_eq!(report.excluded.len(), 1);
    let text = render(&report, &options(100));
    assert_fits(&text, 100, "judgement");
    assert!(text.contains("Fix the cause above"), "{text}");
    insta::assert_snapshot!(text);
}

/// A symptom no cause explains: what to collect for its possible causes,
/// five lines, the rest behind `--all-inconclusive`, which lists each in
/// full.
#[test]
fn symptom_alone_lists_five_things_to_collect() {
    let symptom_only: String = SEED_LIKE.lines().nth(1).unwrap().to_string() + "\n";
    let report = judgement_report(&symptom_only);
    assert_eq!(report.collect_next.len(), 7, "{:?}", report.collect_next);
    let text = render(&report, &options(100));
    assert_fits(&text, 100, "symptom alone");
    insta::assert_snapshot!(text);
    let mut all = options(100);
    all.all_inconclusive = true;
    let text = render(&report, &all);
    assert_fits(&text, 100, "symptom alone, all");
    for n in 1..=7 {
        assert!(text.contains(&format!("decides X-ALT-00{n}")), "{text}");
    }
    assert!(!text.contains("more with --all-inconclusive"), "{text}");
}
