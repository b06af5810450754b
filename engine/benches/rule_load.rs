//! What loading a rule costs: the example `mass-forwarding` rule loaded cold
//! (isolation pass, componentizing and compilation) against loaded from a
//! warm on-disk compile cache, in the same run.
//!
//! Run: `cargo bench -p enforcer --bench rule_load`.
#![allow(missing_docs)] // criterion_group! generates undocumented items.

use std::path::PathBuf;

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use enforcer::runtime::{Runtime, RuntimeConfig};

fn example(name: &str) -> &'static [u8] {
    enforcer::examples::EXAMPLE_RULES
        .iter()
        .find(|(rule, _)| *rule == name)
        .map(|(_, wasm)| *wasm)
        .expect("the example rule is built in")
}

/// A cache directory of this run's own, removed when the benchmark ends.
struct CacheDir(PathBuf);

impl Drop for CacheDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rule_load(c: &mut Criterion) {
    let wasm = example("mass-forwarding");
    let dir = CacheDir(
        std::env::temp_dir().join(format!("enforcer-bench-rule-load-{}", std::process::id())),
    );

    let cold = Runtime::new().unwrap();
    let warm = Runtime::with_config(RuntimeConfig {
        cache_dir: Some(dir.0.clone()),
        ..RuntimeConfig::default()
    })
    .unwrap();
    // The first load fills the cache; every later one reads it.
    assert!(!warm.load(wasm).unwrap().compiled_from_cache());
    assert!(warm.load(wasm).unwrap().compiled_from_cache());

    let mut group = c.benchmark_group("rule_load");
    // A cold load compiles a whole rule: a few samples are enough, and the
    // default hundred would take minutes.
    group.sample_size(10);
    group.bench_function("cold", |b| {
        b.iter(|| {
            let rule = cold.load(black_box(wasm)).unwrap();
            assert!(!rule.compiled_from_cache());
            rule
        })
    });
    group.bench_function("warm_cache", |b| {
        b.iter(|| {
            let rule = warm.load(black_box(wasm)).unwrap();
            assert!(rule.compiled_from_cache());
            rule
        })
    });
    group.finish();
}

criterion_group!(benches, rule_load);
criterion_main!(benches);
