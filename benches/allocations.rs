//! Heap allocations of one gradient evaluation, generated against hand-written, on the four
//! workloads, counted by dhat's allocator in testing mode.
//!
//! `cargo bench --bench allocations`

#[path = "workloads/mod.rs"]
mod workloads;

use workloads::{Chain, Matmul, Mlp, Rosenbrock};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Allocations and bytes of one call of `f` (after a warm-up call).
fn count<T>(mut f: impl FnMut() -> T) -> (u64, u64) {
    drop(f());
    let before = dhat::HeapStats::get();
    let out = f();
    let after = dhat::HeapStats::get();
    drop(out);
    (
        after.total_blocks - before.total_blocks,
        after.total_bytes - before.total_bytes,
    )
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    println!("| workload | generated: allocations | bytes | hand-written: allocations | bytes |");
    println!("|---|---|---|---|---|");
    let row = |name: &str, generated: (u64, u64), hand: (u64, u64)| {
        println!(
            "| {name} | {} | {} | {} | {} |",
            generated.0, generated.1, hand.0, hand.1
        );
    };
    let w = Mlp::new();
    row("W1 mlp", count(|| w.generated()), count(|| w.by_hand()));
    let w = Chain::new();
    row("W2 chain", count(|| w.generated()), count(|| w.by_hand()));
    let w = Rosenbrock::new();
    row(
        "W3 rosenbrock",
        count(|| w.generated()),
        count(|| w.by_hand()),
    );
    let w = Matmul::new();
    row("W4 matmul", count(|| w.generated()), count(|| w.by_hand()));
}
