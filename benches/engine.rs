//! Criterion benchmarks of the three costs of a run: parsing conditions,
//! loading (checking and compiling) rules, and scanning with the
//! prefilter. Run with `cargo bench`; results are not asserted anywhere.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use triage::engine::{Engine, RunOptions};
use triage::lang::parser::parse_condition;
use triage::rules::{embedded_files, load, KbFile};

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
    c.bench_function("load the built-in knowledge base", |b| {
        b.iter(|| load(black_box(&builtin)))
    });
    let thousand = generated_rules(1000);
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("1000 generated rules", |b| b.iter(|| load(black_box(&thousand))));
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

criterion_group!(benches, parse, loading, scanning);
criterion_main!(benches);
