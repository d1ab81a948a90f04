//! The generated gradient against the same gradient written by hand with ndarray, and the
//! forward pass alone, measured in the same run on the four workloads of `workloads/`.
//! Report ratios (`generated / hand-written`, `generated / forward`), not absolute times:
//! `python3 scripts/benchmarks.py` runs this and writes `BENCHMARKS.md`.
//!
//! `cargo bench --bench grad_vs_hand`

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use ndarray::{Array, Dimension};
use std::cell::Cell;
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
    timed(&mut group, name, "forward", forward);
    timed(&mut group, name, "generated", generated);
    timed(&mut group, name, "hand-written", hand);
    group.finish();
}

/// One benchmark of a group, and the page faults per evaluation it took (warm-up included),
/// printed for `scripts/benchmarks.py`: glibc may give freed memory back to the kernel after
/// every evaluation, which then faults it in again, and that shows in the time.
fn timed<R>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str, id: &str, f: impl Fn() -> R) {
    let calls = Cell::new(0_u64);
    let before = minor_faults();
    group.bench_function(id, |b| {
        b.iter(|| {
            calls.set(calls.get() + 1);
            black_box(f())
        })
    });
    // No calls: filtered out on the command line.
    if let (Some(before), Some(after), 1..) = (before, minor_faults(), calls.get()) {
        let per_call = (after - before) as f64 / calls.get() as f64;
        println!("page faults: {name}/{id}: {per_call:.1} per evaluation");
    }
}

/// This process's minor page faults so far: field 10 of `/proc/self/stat` (Linux), after the
/// command name, which is in parentheses and may hold spaces. `None` elsewhere.
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields = stat.get(stat.rfind(')')? + 1..)?;
    fields.split_whitespace().nth(7)?.parse().ok()
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
