//! `f_grad` allocates no more than the hand-written gradient, on the four benchmark workloads
//! (heap blocks and bytes of one evaluation, counted by dhat's allocator in testing mode). The figures
//! themselves are reported by `cargo bench --bench allocations`.
//!
//! Run without the test harness (`harness = false`): dhat counts the whole process, so
//! nothing else may run beside it.

#[path = "../benches/workloads/mod.rs"]
mod workloads;

use workloads::{Chain, Matmul, Mlp, Rosenbrock};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Heap blocks and bytes allocated by one call of `f` (after a warm-up call).
fn blocks<T>(mut f: impl FnMut() -> T) -> (u64, u64) {
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
    // Smaller shapes than the benchmarks' (the counts do not depend on them), for a fast
    // debug build.
    let mlp = Mlp::with_sizes(8, 20, 6, 4);
    let chain = Chain::new();
    let rosenbrock = Rosenbrock::new();
    let matmul = Matmul::with_sizes(6, 5);
    let rows = [
        (
            "W1 mlp",
            blocks(|| mlp.generated()),
            blocks(|| mlp.by_hand()),
        ),
        (
            "W2 chain",
            blocks(|| chain.generated()),
            blocks(|| chain.by_hand()),
        ),
        (
            "W3 rosenbrock",
            blocks(|| rosenbrock.generated()),
            blocks(|| rosenbrock.by_hand()),
        ),
        (
            "W4 matmul",
            blocks(|| matmul.generated()),
            blocks(|| matmul.by_hand()),
        ),
    ];
    let mut failed = false;
    for (name, generated, hand) in rows {
        let more = generated.0 > hand.0 || generated.1 > hand.1;
        let verdict = if more { "FAILED" } else { "ok" };
        println!(
            "{name}: generated {} allocations of {} bytes, hand-written {} of {}: {verdict}",
            generated.0, generated.1, hand.0, hand.1
        );
        failed |= more;
    }
    assert!(
        !failed,
        "a generated gradient allocates more than the hand-written one"
    );
}
