//! The generated gradient against the same gradient written by hand with ndarray, and the
//! forward pass alone, measured in the same run on the four workloads of `workloads/`.
//! Report ratios (`generated / hand-written`, `generated / forward`), not absolute times:
//! `python3 scripts/benchmarks.py` runs this and writes `BENCHMARKS.md`.
//!
//! `cargo bench --bench grad_vs_hand`

use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array, Dimension};
use std::hint::black_box;

#[path = "workloads/mod.rs"]
mod workloads;

use workloads::{Chain, Matmul, Mlp, Rosenbrock};

fn max_rel<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    tape::gradcheck::max_relative_error(a, b).0
}

/// Checks the generated gradients against the hand-written ones before anything is timed.
fn check(name: &str, value: (f64, f64), grads: &[f64]) {
    let value_err = (value.0 - value.1).abs() / value.1.abs().max(1.0);
    let worst = grads.iter().copied().fold(value_err, f64::max);
    println!("{name}: generated vs hand-written, max relative error {worst:.1e}");
    assert!(
        worst < 1e-10,
        "{name}: the generated gradient disagrees with the hand-written one ({worst:e})"
    );
}

/// Times the three implementations of one workload in one criterion group.
fn compare<A, B, C>(
    c: &mut Criterion,
    name: &str,
    samples: usize,
    forward: impl Fn() -> A,
    generated: impl Fn() -> B,
    hand: impl Fn() -> C,
) {
    let mut group = c.benchmark_group(name);
    group.sample_size(samples);
    group.bench_function("forward", |b| b.iter(|| black_box(forward())));
    group.bench_function("generated", |b| b.iter(|| black_box(generated())));
    group.bench_function("hand-written", |b| b.iter(|| black_box(hand())));
    group.finish();
}

fn benches(c: &mut Criterion) {
    let w = Mlp::new();
    let (g, h) = (w.generated(), w.by_hand());
    check(
        "W1 mlp",
        (g.value, h.0),
        &[
            max_rel(&g.w1, &h.1),
            max_rel(&g.b1, &h.2),
            max_rel(&g.w2, &h.3),
            max_rel(&g.b2, &h.4),
        ],
    );
    compare(
        c,
        "W1 mlp",
        100,
        || black_box(&w).forward(),
        || black_box(&w).generated(),
        || black_box(&w).by_hand(),
    );

    let w = Chain::new();
    let (g, h) = (w.generated(), w.by_hand());
    check(
        "W2 chain",
        (g.value, h.0),
        &[
            max_rel(&g.x, &h.1),
            max_rel(&g.a, &h.2),
            max_rel(&g.b, &h.3),
        ],
    );
    compare(
        c,
        "W2 chain",
        100,
        || black_box(&w).forward(),
        || black_box(&w).generated(),
        || black_box(&w).by_hand(),
    );

    let w = Rosenbrock::new();
    let (g, h) = (w.generated(), w.by_hand());
    check("W3 rosenbrock", (g.value, h.0), &[max_rel(&g.x, &h.1)]);
    compare(
        c,
        "W3 rosenbrock",
        100,
        || black_box(&w).forward(),
        || black_box(&w).generated(),
        || black_box(&w).by_hand(),
    );

    let w = Matmul::new();
    let (g, h) = (w.generated(), w.by_hand());
    check("W4 matmul", (g.value, h.0), &[max_rel(&g.w, &h.1)]);
    compare(
        c,
        "W4 matmul",
        30,
        || black_box(&w).forward(),
        || black_box(&w).generated(),
        || black_box(&w).by_hand(),
    );
}

criterion_group!(grad_vs_hand, benches);
criterion_main!(grad_vs_hand);
