//! The scan's shortcuts never change an answer: a record that holds one
//! literal of each of a query's phrases (`also_literals`, found anywhere
//! in a multi-line record), a query asked only whether it has a match
//! (tested until its first), the violators of `all q have p` (tested only
//! where `q` matched). Each is compared with the same predicates applied by
//! hand to every record.

use crate::common;
use proptest::prelude::*;

const CLASSES: [&str; 3] = ["RestAPIClient", "SmartLicensingUtil", "ClusterHealthManager"];
const WORDS: [&str; 6] = ["alpha", "bravo", "charlie", "gamma", "filler", "noise"];

/// A Manager log record: its class, the words of its first line, and the
/// words of its continuation lines (a stack trace).
#[derive(Debug, Clone)]
struct Record {
    class: &'static str,
    first: Vec<&'static str>,
    more: Vec<Vec<&'static str>>,
}

impl Record {
    fn text(&self, i: usize) -> String {
        let mut s = format!(
            "13-Jan-2023 17:{:02}:{:02},{:03} UTC ERROR [vm] [{}] (default task-1) |default| {}",
            (i / 60) % 60,
            i % 60,
            i % 1000,
            self.class,
            self.first.join(" ")
        );
        for line in &self.more {
            s.push_str(&format!("\n\tat com.example.{}(X.java:1)", line.join("_")));
        }
        s
    }

    fn holds(&self, word: &str) -> bool {
        self.first.contains(&word) || self.more.iter().any(|l| l.contains(&word))
    }
}

fn record() -> impl Strategy<Value = Record> {
    let words = || prop::collection::vec(prop::sample::select(WORDS.to_vec()), 0..4);
    (
        prop::sample::select(CLASSES.to_vec()),
        words(),
        prop::collection::vec(words(), 0..3),
    )
        .prop_map(|(class, first, more)| Record { class, first, more })
}

/// `hit` and the message of rule T-1 over these records.
fn run(condition: &str, queries: &[(&str, &str)], message: &str, records: &[Record]) -> (String, String) {
    let log: String = records.iter().enumerate().map(|(i, r)| r.text(i) + "\n").collect();
    let out = common::run(
        &[],
        condition,
        queries,
        message,
        &[("var/log/nms/vmanage-server.log", log)],
        None,
    );
    (out.hit, out.message)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn two_phrases_count_the_records_that_hold_both(records in prop::collection::vec(record(), 0..40)) {
        let expected = records.iter().filter(|r| r.holds("alpha") && r.holds("bravo")).count();
        let (hit, message) = run(
            "both",
            &[("both", r#"vmanage_server where message contains "alpha" and message contains "bravo""#)],
            "{both.count}",
            &records,
        );
        prop_assert_eq!(hit == "hit", expected > 0);
        if expected > 0 {
            prop_assert_eq!(message, expected.to_string());
        }
    }

    #[test]
    fn a_column_and_a_phrase_count_the_records_that_hold_both(records in prop::collection::vec(record(), 0..40)) {
        let expected = records
            .iter()
            .filter(|r| ["RestAPIClient", "SmartLicensingUtil"].contains(&r.class) && r.holds("charlie"))
            .count();
        let (hit, message) = run(
            "mixed",
            &[("mixed", r#"vmanage_server where class in ["RestAPIClient", "SmartLicensingUtil"] and message contains "charlie""#)],
            "{mixed.count}",
            &records,
        );
        prop_assert_eq!(hit == "hit", expected > 0);
        if expected > 0 {
            prop_assert_eq!(message, expected.to_string());
        }
    }

    #[test]
    fn a_query_asked_only_whether_it_matches_answers_as_a_counted_one(records in prop::collection::vec(record(), 0..40)) {
        let expected = records.iter().any(|r| r.holds("gamma"));
        let (hit, _) = run(
            "not (no seen)",
            &[("seen", r#"vmanage_server where message contains "gamma""#)],
            "m",
            &records,
        );
        prop_assert_eq!(hit == "hit", expected);
    }

    #[test]
    fn all_have_is_decided_on_every_record_the_query_matches(records in prop::collection::vec(record(), 0..40)) {
        let matching: Vec<&Record> = records.iter().filter(|r| r.holds("alpha")).collect();
        let expected = matching.iter().all(|r| r.class == "RestAPIClient");
        let (hit, _) = run(
            "any alpha and all alpha have class == \"RestAPIClient\"",
            &[("alpha", r#"vmanage_server where message contains "alpha""#)],
            "m",
            &records,
        );
        prop_assert_eq!(hit == "hit", !matching.is_empty() && expected);
    }
}
