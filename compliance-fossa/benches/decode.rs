//! Decoding speed of FOSSA responses, in MB/s of JSON on one core.
//!
//! Run: `cargo bench -p compliance-fossa --bench decode -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use compliance_core::domain::IssueCategory;
use compliance_fossa::mapping::{self, DependencySet};
use compliance_fossa::model::{decode_dependencies_page, decode_issues_page};
use compliance_fossa::sim::{ProjectSpec, SimState};
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const LOCATOR: &str = "custom+1/github.com/acme/bench";

/// A v1 dependencies body with every dependency (FOSSA's answer without `limit`), and one
/// full issues page (1000 issues, the largest `count`) of each category mixed.
fn bodies() -> (String, String) {
    let state = SimState::new();
    state.generate_project(&ProjectSpec::new(LOCATOR, 20_000, 1_000, 42).with_unresolved(20));
    let project = state.project(LOCATOR).unwrap();
    let revision = project.latest().unwrap();
    let dependencies: Vec<&str> = revision.dependencies.iter().map(|d| &*d.json).collect();
    let issues: Vec<&str> = revision.issues.iter().map(|i| &*i.json).collect();
    (
        format!("[{}]", dependencies.join(",")),
        format!("{{\"issues\":[{}]}}", issues.join(",")),
    )
}

fn decode(c: &mut Criterion) {
    let (dependencies, issues) = bodies();

    let mut group = c.benchmark_group("dependencies_v1_20000");
    group.throughput(Throughput::Bytes(dependencies.len() as u64));
    // The JSON parser alone, keeping nothing: the ceiling for any decoder on this machine.
    group.bench_function("parse_only", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(dependencies.as_bytes()))
                .unwrap()
        });
    });
    group.bench_function("decode", |b| {
        b.iter(|| {
            decode_dependencies_page(black_box(dependencies.as_bytes()))
                .unwrap()
                .len()
        });
    });
    // The mapped result goes to the caller, so dropping it is not timed.
    group.bench_function("decode_and_map", |b| {
        b.iter_with_large_drop(|| {
            let mut set = DependencySet::new();
            for raw in &decode_dependencies_page(black_box(dependencies.as_bytes())).unwrap() {
                set.add(raw);
            }
            assert_eq!(set.len(), 20_000);
            set.into_parts()
        });
    });
    group.finish();

    let mut group = c.benchmark_group("issues_page_1000");
    group.throughput(Throughput::Bytes(issues.len() as u64));
    group.bench_function("decode_and_map", |b| {
        b.iter_with_large_drop(|| {
            let page = decode_issues_page(black_box(issues.as_bytes())).unwrap();
            page.issues
                .unwrap()
                .into_iter()
                .map(|raw| mapping::issue(IssueCategory::Vulnerability, raw, LOCATOR))
                .collect::<Vec<_>>()
        });
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
