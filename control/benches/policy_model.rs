//! The policy model at cluster scale: 10,000 workload endpoints (100 on this node), 1,000
//! GlobalNetworkPolicies each with its own rule selector. Measures what the agent pays per
//! watch event: a remote workload relabelled (set deltas only, no recompilation), and one
//! local endpoint's program rendered and compiled; and the cost of loading everything.

use std::collections::BTreeMap;

use control::policy::{Direction, EndpointKey, PolicyModel};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use fastpath::classifier::ClassifierBuilder;
use resources::{
    GlobalNetworkPolicy, GlobalNetworkPolicySpec, Metadata, Resource, Rule, WorkloadEndpoint,
    WorkloadEndpointSpec,
};

const ENDPOINTS: usize = 10_000;
const LOCAL: usize = 100;
const APPS: usize = 1_000;

fn workload(i: usize, app: usize) -> Resource {
    let mut meta = Metadata::namespaced("default", format!("w{i}"));
    meta.labels = BTreeMap::from([("app".to_string(), format!("app{app}"))]);
    let spec = WorkloadEndpointSpec {
        node: if i < LOCAL {
            "node-a".into()
        } else {
            format!("node-{}", i % 50)
        },
        orchestrator: "cni".into(),
        interface_name: format!("cali{i}"),
        ip_networks: vec![format!("10.{}.{}.{}/32", i >> 16, (i >> 8) & 255, i & 255)],
        ..Default::default()
    };
    WorkloadEndpoint::new(meta, spec).into()
}

fn policy(app: usize) -> Resource {
    let spec = GlobalNetworkPolicySpec {
        order: Some(app as f64),
        selector: Some(format!("app == 'app{app}'")),
        ingress: vec![Rule::allow_from(format!(
            "app == 'app{}'",
            (app + 1) % APPS
        ))],
        ..Default::default()
    };
    GlobalNetworkPolicy::new(Metadata::named(format!("p{app}")), spec).into()
}

fn loaded() -> PolicyModel {
    let mut model = PolicyModel::new("node-a");
    for app in 0..APPS {
        model.upsert(&policy(app)).unwrap();
    }
    for i in 0..ENDPOINTS {
        model.upsert(&workload(i, i % APPS)).unwrap();
    }
    model.take_ipset_deltas();
    model.dirty_endpoints();
    model
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("policy_model_10k_endpoints_1k_policies");
    group.sample_size(10);
    group.bench_function("load_all", |b| b.iter(|| black_box(loaded())));

    let mut model = loaded();
    let remote = ENDPOINTS - 1;
    let mut flip = false;
    group.sample_size(100);
    group.bench_function("relabel_remote_workload_and_take_deltas", |b| {
        b.iter(|| {
            flip = !flip;
            model
                .upsert(&workload(remote, if flip { 1 } else { 2 }))
                .unwrap();
            let deltas = model.take_ipset_deltas();
            assert_eq!(deltas.len(), 2);
            assert!(model.dirty_endpoints().is_empty());
            deltas
        })
    });

    let local = EndpointKey::Workload {
        namespace: "default".into(),
        name: "w7".into(),
    };
    group.bench_function("render_and_compile_one_local_endpoint", |b| {
        b.iter_batched(
            || (),
            |_| {
                let rules = model.endpoint_rules(&local, Direction::Ingress).unwrap();
                ClassifierBuilder::default().compile(&rules).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
