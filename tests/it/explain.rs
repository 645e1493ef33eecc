//! `triage explain RULE BUNDLE`: the evaluation tree of one rule, as a
//! support engineer reads it, for a hit, a miss and an undecided rule.

use crate::common::{json_of, stdout_of, triage};
use predicates::prelude::*;

fn explain(rule: &str, bundle: &str) -> String {
    stdout_of(&["explain", rule, bundle])
}

#[test]
fn a_hit_shows_every_node_true_and_the_evidence_lines() {
    insta::assert_snapshot!("explain_hit", explain("SDWAN-LIC-001", "corpus/seed-lic-001/bundle"));
}

#[test]
fn a_miss_shows_which_node_is_false() {
    // The seed's network path is fine: the TCP handshake completes.
    insta::assert_snapshot!("explain_no_hit", explain("SDWAN-NET-001", "corpus/seed-lic-001/bundle"));
}

#[test]
fn an_undecided_rule_names_the_missing_source_and_what_to_collect() {
    let text = explain("SDWAN-TLS-004", "corpus/seed-lic-001/bundle");
    assert!(text.contains("result: INCONCLUSIVE"), "{text}");
    assert!(text.contains("? any stored_cert"), "{text}");
    assert!(text.contains("no `openssl_x509` file"), "{text}");
    assert!(text.contains("collect: "), "{text}");
}

#[test]
fn json_has_the_tree_with_values_compared() {
    let doc = json_of(&[
        "explain",
        "SDWAN-INFO-001",
        "corpus/info-001-offload/bundle",
        "--format",
        "json",
    ]);
    assert_eq!(doc["outcome"], "hit");
    let children = doc["tree"]["children"].as_array().expect("children");
    let distinct = children
        .iter()
        .find(|c| c["text"].as_str().unwrap().starts_with("distinct(bad_cksum, src)"))
        .expect("the distinct comparison is a node");
    assert_eq!(distinct["truth"], "true");
    assert_eq!(distinct["detail"], "1 == 1");
    let query = &doc["queries"][0];
    assert_eq!(query["name"], "bad_cksum");
    assert!(query["matches"].as_u64().unwrap() > 0);
    assert!(query["evidence"][0]["line"].as_u64().unwrap() > 0);
}

#[test]
fn an_unknown_rule_id_gets_a_suggestion() {
    triage()
        .args(["explain", "SDWAN-LIC-01", "corpus/seed-lic-001/bundle"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "no rule `SDWAN-LIC-01` is loaded; did you mean SDWAN-LIC-001?",
        ));
}

#[test]
fn an_unreadable_bundle_is_an_error() {
    triage()
        .args(["explain", "SDWAN-LIC-001", "corpus/does-not-exist"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            "error: corpus/does-not-exist does not exist; check the path, or give the path of a support bundle: \
             a directory, or a .tar, .tar.gz/.tgz, .zip or .gz archive\n",
        );
}
