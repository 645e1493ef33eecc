//! Parsers never panic, whatever they are given.

use std::sync::Arc;

use proptest::prelude::*;
use triage::FormatSet;
use triage::ZoneTable;
use triage::{embedded_files, load, load_rule_file, KbFile};
use triage::{parse_condition, parse_predicate, parse_query};

/// Text made of the language's own pieces, so that the parser gets deep
/// into its rules, not just stuck at the first character.
fn condition_like() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a",
        "b",
        "any",
        "no",
        "all",
        "have",
        "count(",
        "distinct(",
        ")",
        "(",
        ",",
        "and",
        "or",
        "not",
        "within",
        "30s",
        "of",
        "collection",
        "then",
        "where",
        "tcpdump",
        "==",
        "<",
        ">=",
        "contains",
        "\"x\"",
        "/re(/",
        "/ok/i",
        "[",
        "]",
        "@l",
        "in",
        "is",
        "missing",
        "20.9.1",
        "10.0.0.0/8",
        "true",
        "starts",
        "with",
        "matches",
        "#",
        "\n",
    ]);
    prop::collection::vec(atoms, 0..24).prop_map(|v| v.join(" "))
}

static BUILTIN: std::sync::LazyLock<triage::KnowledgeBase> = std::sync::LazyLock::new(|| load(&embedded_files(None)));

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn condition_parser_never_panics(s in "\\PC{0,80}") {
        let _ = parse_condition(&s);
        let _ = parse_query(&s);
        let _ = parse_predicate(&s);
    }

    #[test]
    fn condition_parser_never_panics_on_language_pieces(s in condition_like()) {
        let _ = parse_condition(&s);
        let _ = parse_query(&s);
        if let Err(e) = parse_condition(&s) {
            prop_assert!(e.span.start <= s.len() && e.span.end <= s.len(), "span {:?} outside {:?}", e.span, s);
        }
    }

    #[test]
    fn rule_loader_never_panics(cond in condition_like(), junk in "\\PC{0,40}") {
        let text = format!("id = \"P\"\ntitle = \"t\"\nseverity = \"info\"\ncondition = '''{cond}'''\nremediation = \"-\"\n{junk}\n");
        let file = KbFile { path: "p.toml".into(), base_dir: None, text: Arc::from(text), layer: 1 };
        let (_, problems) = load_rule_file(&file, &BUILTIN.formats, &BUILTIN.macros);
        for p in &problems.problems {
            for l in &p.labels {
                prop_assert!(l.span.end <= problems.text.len(), "label outside the file");
            }
        }
    }

    #[test]
    fn format_parsers_never_panic(line in "\\PC{0,200}") {
        let formats: &FormatSet = &BUILTIN.formats;
        let zones = ZoneTable::default();
        for f in &formats.formats {
            let _ = f.parse(&line, &zones);
        }
        let _ = formats.detect("x.txt", line.as_bytes());
    }
}

/// Bytes that start like an archive (gzip, zip, tar) or not at all.
fn archive_like() -> impl Strategy<Value = Vec<u8>> {
    let prefix = prop::sample::select(vec![
        vec![],
        vec![0x1f, 0x8b, 0x08, 0x00],
        b"PK\x03\x04".to_vec(),
        b"PK\x05\x06".to_vec(),
    ]);
    (prefix, prop::collection::vec(any::<u8>(), 0..2048)).prop_map(|(mut p, rest)| {
        p.extend(rest);
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn archive_reader_never_panics(data in archive_like(), name in prop::sample::select(vec!["x.tar.gz", "x.zip", "x.log", "x.gz"])) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, &data).unwrap();
        let (files, _warnings) = triage::read_bundle(&path, &triage::Limits::default(), |f| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(f.reader, &mut sink);
            f.path
        });
        for f in files {
            prop_assert!(f.starts_with(name));
        }
    }
}
