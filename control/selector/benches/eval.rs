//! Evaluating typical selectors against a workload's 10 labels, and parsing one.

use std::collections::{BTreeMap, HashMap};

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use selector::{ParentLabels, Selector};

fn ten_labels() -> Vec<(String, String)> {
    [
        ("app", "shop"),
        ("role", "web-frontend"),
        ("env", "prod"),
        ("tier", "1"),
        ("team", "blue"),
        ("version", "v2.3.1"),
        ("zone", "eu-west-1a"),
        ("k8s.io/managed-by", "helm"),
        ("projectcalico.org/namespace", "shop"),
        ("projectcalico.org/orchestrator", "k8s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

const TYPICAL: &str = "role == 'web-frontend' && env in {'prod', 'staging'} && !has(quarantine) \
                       && projectcalico.org/namespace == 'shop'";

fn bench(c: &mut Criterion) {
    let pairs = ten_labels();
    let btree: BTreeMap<String, String> = pairs.iter().cloned().collect();
    let hash: HashMap<String, String> = pairs.iter().cloned().collect();
    let typical = Selector::parse(TYPICAL).unwrap();
    let all = Selector::parse("all()").unwrap();

    let mut group = c.benchmark_group("selector_eval_10_labels");
    group.bench_function("typical/btreemap", |b| {
        b.iter(|| typical.matches(black_box(&btree)))
    });
    group.bench_function("typical/hashmap", |b| {
        b.iter(|| typical.matches(black_box(&hash)))
    });
    let profile: BTreeMap<String, String> = [("pcns.team".to_string(), "blue".to_string())].into();
    let layered = ParentLabels::new(&btree, &profile);
    group.bench_function("typical/parent_labels", |b| {
        b.iter(|| typical.matches(black_box(&layered)))
    });
    group.bench_function("all/btreemap", |b| {
        b.iter(|| all.matches(black_box(&btree)))
    });
    group.finish();

    c.bench_function("selector_parse_typical", |b| {
        b.iter(|| Selector::parse(black_box(TYPICAL)).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
