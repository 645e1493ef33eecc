//! Criterion benchmarks of the costs of a run: parsing conditions, loading
//! (checking and compiling) rules, parsing a record's fields, and scanning
//! with the prefilter. Run with `cargo bench`; results are not asserted
//! anywhere.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use regex_automata::{meta, util::primitives::NonMaxUsize, Input};
use triage::parse_condition;
use triage::OnePass;
use triage::{ascii_classes, forget_compiled};
use triage::{embedded_files, load, KbFile};
use triage::{Engine, RunOptions};

fn generated_rules(n: usize) -> Vec<KbFile> {
    let mut files = embedded_files(None);
    for i in 0..n {
        let text = format!(
            "id = \"B-{i:04}\"\ntitle = \"bench {i}\"\nseverity = \"warning\"\ncondition = '''q and count(q) >= 1'''\nremediation = \"-\"\n\n[queries]\nq = '''vmanage_server where message matches /RARE-{i:04}\\] Timeout after (?P<ms>\\d+) ms/ and level == \"ERROR\"'''\n"
        );
        files.push(KbFile {
            path: format!("bench/B-{i:04}.toml"),
            base_dir: None,
            text: Arc::from(text),
            layer: 1,
        });
    }
    files
}

fn manager_log(lines: usize) -> String {
    let mut s = String::with_capacity(lines * 140);
    for i in 0..lines {
        let token = if i % 5000 == 0 {
            format!(" [RARE-{:04}] Timeout after 30 ms", i % 1000)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "13-Jan-2023 17:{:02}:{:02},{:03} UTC INFO  [vm1] [DataCollectionManager] (pool-3-thread-1) |default| Collected interface statistics from 13 device(s) in 618 ms{token}\n",
            i / 60 % 60,
            i % 60,
            i % 1000
        ));
    }
    s
}

fn parse(c: &mut Criterion) {
    let condition = "manager_auth_failure and any of (refused_on_manager, refused_by_doorkeeper) and no other_oauth_error \
                     and not (doorkeeper_token within 2m of refused) and count(syn) >= 2 and distinct(syn, seq) < count(syn)";
    c.bench_function("parse a condition", |b| {
        b.iter(|| parse_condition(black_box(condition)).unwrap())
    });
}

fn loading(c: &mut Criterion) {
    let builtin = embedded_files(None);
    // Each load compiles its regexes afresh, as a run does: a process keeps
    // the patterns it compiled.
    c.bench_function("load the built-in knowledge base", |b| {
        b.iter_batched(forget_compiled, |_| load(black_box(&builtin)), BatchSize::PerIteration)
    });
    let thousand = generated_rules(1000);
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("1000 generated rules", |b| {
        b.iter_batched(forget_compiled, |_| load(black_box(&thousand)), BatchSize::PerIteration)
    });
    group.finish();
}

fn scanning(c: &mut Criterion) {
    let engine = Engine::new(load(&generated_rules(1000)));
    let log = manager_log(100_000);
    let files = vec![("var/log/nms/vmanage-server.log".to_string(), log.clone())];
    let options = RunOptions::default();
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(log.len() as u64));
    group.sample_size(10);
    group.bench_function("manager log, 1000 rules", |b| {
        b.iter(|| engine.diagnose_files("bench", black_box(&files), &options))
    });
    group.finish();
}

/// One tcpdump packet's fields, by the one-pass matcher and by the regex
/// engine's bounded backtracker (what a pattern that is not one-pass gets).
fn record_pattern(c: &mut Criterion) {
    let format = include_str!("../rules/formats/tcpdump.toml");
    let pattern = format
        .lines()
        .find_map(|l| l.trim().strip_prefix("'''^(?P<ts>"))
        .map(|rest| format!("^(?P<ts>{}", rest.trim_end_matches("''',")))
        .expect("the TCP pattern");
    let pattern = ascii_classes(&pattern);
    let packet = "08:10:20.156901 IP (tos 0x0, ttl 64, id 28489, offset 0, flags [DF], proto TCP (6), length 60)\n    \
                  127.0.0.1.54838 > 127.0.0.1.18443: Flags [S], cksum 0xfe30 (incorrect -> 0x88f8), seq 1446430743, \
                  win 65495, options [mss 65495,sackOK,TS val 1100892376 ecr 0,nop,wscale 10], length 0";
    let fast = OnePass::new(&regex_syntax::Parser::new().parse(&pattern).unwrap()).expect("one-pass");
    let backtrack = meta::Builder::new()
        .configure(meta::Config::new().hybrid(false).dfa(false).onepass(false))
        .build(&pattern)
        .unwrap();
    let mut slots = vec![None::<NonMaxUsize>; backtrack.group_info().slot_len()];
    let mut group = c.benchmark_group("tcpdump packet");
    group.throughput(Throughput::Bytes(packet.len() as u64));
    group.bench_function("one-pass matcher", |b| {
        b.iter(|| fast.captures(black_box(packet), &mut slots))
    });
    group.bench_function("bounded backtracker", |b| {
        b.iter(|| backtrack.search_slots(&Input::new(black_box(packet)), &mut slots))
    });
    group.finish();
}

criterion_group!(benches, parse, loading, record_pattern, scanning);
criterion_main!(benches);
