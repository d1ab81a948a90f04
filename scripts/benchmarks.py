#!/usr/bin/env python3
"""Runs the benchmarks and writes BENCHMARKS.md.

    python3 scripts/benchmarks.py            # everything (about 10 minutes on 2 cores)
    python3 scripts/benchmarks.py --quick    # shorter criterion runs
    python3 scripts/benchmarks.py --no-release-builds   # skip `cargo build --release` timings
    python3 scripts/benchmarks.py --no-peers            # skip candle (its build takes minutes)
    python3 scripts/benchmarks.py --native              # also time a build for this CPU

Speed: `cargo bench --bench grad_vs_hand` (criterion); for each workload the median time of
the forward pass, the generated gradient and the hand-written gradient, all from the same run,
and the ratios generated/hand-written and generated/forward.
Heap: `cargo bench --bench allocations`.
Compile cost: functions of about 100, 300 and 1000 nodes, expanded by the macro alone and
checked and built by cargo in a scratch crate.
"""

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ["W1 mlp", "W2 chain", "W3 rosenbrock", "W4 matmul"]
IMPLS = ["forward", "generated", "hand-written"]


def run(cmd, cwd=ROOT, env=None):
    print("$", " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, text=True)


NATIVE_TARGET = ROOT / "target" / "native"


def median_ns(group, impl, target=ROOT / "target"):
    path = target / "criterion" / group / impl / "new" / "estimates.json"
    return json.loads(path.read_text())["median"]["point_estimate"]


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def machine():
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rustc = run(["rustc", "--version"]).stdout.strip()
    return f"{cpu}, {os.cpu_count()} cores, {rustc}"


def speed(quick, native=False):
    """The workloads; with `native`, built for this CPU (`-C target-cpu=native`, AVX2/FMA)."""
    timing = ["--warm-up-time", "1", "--measurement-time", "3"] if quick else ["--warm-up-time", "3", "--measurement-time", "10"]
    env, target = None, ROOT / "target"
    if native:
        target = NATIVE_TARGET
        env = dict(os.environ, RUSTFLAGS="-C target-cpu=native", CARGO_TARGET_DIR=str(target))
    out = run(["cargo", "bench", "--bench", "grad_vs_hand", "--", *timing], env=env)
    checks = [line for line in out.stdout.splitlines() if "max relative error" in line]
    rows = []
    for group in WORKLOADS:
        fwd, gen, hand = (median_ns(group, impl, target) for impl in IMPLS)
        rows.append((group, fwd, gen, hand))
    # "page faults: W4 matmul/generated: 1012.3 per evaluation", printed by the bench.
    faults = {}
    for line in out.stdout.splitlines():
        m = re.match(r"page faults: (.+)/([\w-]+): ([\d.]+) per evaluation", line)
        if m:
            faults[(m.group(1), m.group(2))] = float(m.group(3))
    fault_rows = [(group, [faults.get((group, impl)) for impl in IMPLS]) for group in WORKLOADS]
    return checks, rows, fault_rows


def peers(quick, native=False):
    """candle (CPU, Var + backward) on the same workloads: `peers/benches/candle.rs`; with
    `native`, everything built for this CPU, in its own target directory."""
    timing = ["--warm-up-time", "1", "--measurement-time", "3"] if quick else ["--warm-up-time", "3", "--measurement-time", "10"]
    # One thread for candle too: its matrix products otherwise run on every core (rayon's).
    env, target = dict(threads(1), RAYON_NUM_THREADS="1"), ROOT / "peers" / "target"
    if native:
        target = ROOT / "peers" / "target" / "native"
        env = dict(env, RUSTFLAGS="-C target-cpu=native", CARGO_TARGET_DIR=str(target))
    out = run(["cargo", "bench", "--bench", "candle", "--", *timing], cwd=ROOT / "peers", env=env)
    checks = [line for line in out.stdout.splitlines() if "max relative error" in line]
    if "candle threads: 1" not in out.stdout:
        sys.exit("candle did not run on one thread")
    rows = []
    for group in WORKLOADS:
        base = target / "criterion" / f"{group} (peers)"
        gen, hand, candle = (
            json.loads((base / impl / "new" / "estimates.json").read_text())["median"]["point_estimate"]
            for impl in ("generated", "hand-written", "candle")
        )
        rows.append((group, gen, hand, candle))
    return checks, rows


MATMULS = [("W1 X·W1 64x784x128", 64, 784, 128), ("W4 X·W 256x512x512", 256, 512, 512), ("W4 XT·G 512x256x512", 512, 256, 512)]
KERNELS = [
    "matrixmultiply 1 thread", "matrixmultiply 2 threads", "faer 1 thread", "faer 2 threads",
    "OpenBLAS 1 thread", "OpenBLAS 2 threads", "candle (gemm) 1 thread", "candle (gemm) 2 threads",
]


def have_openblas():
    """Whether the system's OpenBLAS can be linked (Debian: `apt-get install libopenblas-dev`)."""
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True)
    return "libopenblas.so (" in out.stdout


def threads(n):
    """The environment for a peers run with matrixmultiply on `n` threads."""
    return dict(os.environ, MATMUL_NUM_THREADS=str(n))


def matmuls(quick):
    """Matrix-product kernels on the workloads' shapes: `peers/benches/matmul.rs`."""
    timing = ["--warm-up-time", "1", "--measurement-time", "3"] if quick else ["--warm-up-time", "3", "--measurement-time", "10"]
    run(["cargo", "bench", "--bench", "matmul", "--", *timing], cwd=ROOT / "peers", env=dict(threads(1), RAYON_NUM_THREADS="2"))
    run(["cargo", "bench", "--bench", "matmul", "--", *timing, "matrixmultiply"], cwd=ROOT / "peers", env=threads(2))
    run(["cargo", "bench", "--bench", "matmul", "--", *timing, "candle"], cwd=ROOT / "peers", env=dict(threads(1), RAYON_NUM_THREADS="1"))
    blas = have_openblas()
    if blas:
        for n in (1, 2):
            env = dict(threads(1), OPENBLAS_NUM_THREADS=str(n))
            run(["cargo", "bench", "--features", "blas", "--bench", "matmul", "--", *timing, "OpenBLAS"], cwd=ROOT / "peers", env=env)
    rows = []
    for name, m, k, n in MATMULS:
        base = ROOT / "peers" / "target" / "criterion" / f"matmul {name}"
        cells = []
        for kernel in KERNELS:
            if kernel.startswith("OpenBLAS") and not blas:
                cells.append("not installed")
                continue
            ns = json.loads((base / kernel / "new" / "estimates.json").read_text())["median"]["point_estimate"]
            cells.append(f"{fmt_time(ns)} ({2 * m * k * n / ns:.0f} GFLOP/s)")
        rows.append((name, cells))
    return rows


def allocations():
    out = run(["cargo", "bench", "--bench", "allocations"])
    return [line for line in out.stdout.splitlines() if line.startswith("|")]


def sized_function(steps, wide):
    lines = []
    for i in range(steps):
        if wide:
            lines.append(f"    let t{i} = tanh(&(x * a + b)).sum();\n    total = total + t{i};")
        else:
            lines.append("    y = tanh(&(&y * a + b)) * x;")
    body = "\n".join(lines)
    return (
        "#[differentiable]\n"
        "pub fn sized(x: &Array1<f64>, a: &Array1<f64>, b: &Array1<f64>) -> f64 {\n"
        "    let mut y = x * 1.0;\n    let mut total = 0.0;\n"
        f"{body}\n    y.sum() + total\n}}\n"
    )


# A release build of a 1,000-node function can take LLVM tens of minutes: stop it and say so.
RELEASE_TIMEOUT = 600


def compile_cost(release):
    expansion = {}
    out = run(["cargo", "test", "-p", "tape-macros", "--release", "expansion_cost", "--", "--ignored", "--nocapture"])
    for line in out.stdout.splitlines():
        m = re.match(r"expansion (\w+) (\d+) nodes: ([\d.]+) ms", line)
        if m:
            expansion[(m.group(1), int(m.group(2)))] = float(m.group(3))
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="tape-compile-"))
    try:
        (scratch / "src").mkdir()
        (scratch / "Cargo.toml").write_text(
            '[package]\nname = "sized"\nversion = "0.0.0"\nedition = "2024"\n\n'
            f'[dependencies]\ntape = {{ path = "{ROOT}" }}\n'
        )
        env = dict(os.environ, CARGO_TARGET_DIR=str(scratch / "target"))
        lib = scratch / "src" / "lib.rs"
        lib.write_text("use tape::prelude::*;\n" + sized_function(1, False))
        if release:
            run(["cargo", "build", "--release", "-q"], cwd=scratch, env=env)
        run(["cargo", "check", "-q"], cwd=scratch, env=env)
        # About 100, 300 and 1,000 nodes of each shape (4 nodes a chain step, 5 a wide one).
        for wide in (False, True):
            for steps in ((20, 60, 200) if wide else (25, 75, 250)):
                # The median of three checks, each after checking another function (as an
                # edit would), with cargo's default incremental cache.
                checks = []
                for _ in range(3):
                    lib.write_text("use tape::prelude::*;\n" + sized_function(1, False))
                    run(["cargo", "check", "-q"], cwd=scratch, env=env)
                    lib.write_text("use tape::prelude::*;\n" + sized_function(steps, wide))
                    t0 = time.monotonic()
                    run(["cargo", "check", "-q"], cwd=scratch, env=env)
                    checks.append(time.monotonic() - t0)
                check = sorted(checks)[1]
                build = None
                if release:
                    t0 = time.monotonic()
                    try:
                        subprocess.run(["cargo", "build", "--release", "-q"], cwd=scratch, env=env,
                                       check=True, capture_output=True, timeout=RELEASE_TIMEOUT)
                        build = time.monotonic() - t0
                    except subprocess.TimeoutExpired:
                        build = float("inf")
                kind = "wide" if wide else "chain"
                per_step = 5 if wide else 4
                nodes = next((n for (k, n) in expansion
                              if k == kind and abs(n - per_step * steps) < per_step * steps * 0.2), None)
                ms = expansion.get((kind, nodes)) if nodes else None
                rows.append((kind, nodes, ms, check, build))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return rows


def speed_table(rows):
    """The speed table: medians and same-run ratios per workload."""
    lines = [
        "| workload | forward | generated `_grad` | hand-written | generated / hand-written | generated / forward |",
        "|---|---|---|---|---|---|",
    ]
    for group, fwd, gen, hand in rows:
        lines.append(f"| {group} | {fmt_time(fwd)} | {fmt_time(gen)} | {fmt_time(hand)} | {gen / hand:.2f}× | {gen / fwd:.2f}× |")
    return lines


def fault_table(faults):
    """Page faults per evaluation, per workload and implementation."""
    lines = ["| workload | forward | generated `_grad` | hand-written |", "|---|---|---|---|"]
    for group, cells in faults:
        lines.append(f"| {group} | " + " | ".join("?" if c is None else f"{c:.0f}" for c in cells) + " |")
    return lines


def main():
    quick = "--quick" in sys.argv
    checks, rows, faults = speed(quick)
    _, native_rows, native_faults = speed(quick, native=True) if "--native" in sys.argv else ([], [], [])
    peer_checks, peer_rows = peers(quick) if "--no-peers" not in sys.argv else ([], [])
    native_peer_rows = peers(quick, native=True)[1] if peer_rows and "--native" in sys.argv else []
    matmul_rows = matmuls(quick) if "--no-peers" not in sys.argv else []
    allocs = allocations()
    compile_rows = compile_cost("--no-release-builds" not in sys.argv)
    flags = "".join(f" {a}" for a in sys.argv[1:])
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python3 scripts/benchmarks.py{flags}` on {time.strftime('%Y-%m-%d')}.",
        "",
        f"- Machine: {machine()}.",
        "- Threads: 1 (ndarray's default matmul, matrixmultiply, without its `threading` feature).",
        "- Matmul backend: matrixmultiply (ndarray 0.17's default), with its AVX-512 kernel, which tape turns on",
        "  and ndarray leaves off (chosen at run time; this CPU has AVX-512F).",
        "- Every implementation's gradients are checked against the hand-written ones before timing:",
        "",
        *[f"  - {c}" for c in checks],
        "",
        "## Speed",
        "",
        "Median time per evaluation (criterion), and ratios of medians from the same run.",
        "",
        *speed_table(rows),
    ]
    lines += [
        "",
        "The generated code computes `tanh`, `exp` and the logistic function with `tape::math`",
        "(no libm call; within 1–2 ulp of glibc), the hand-written code with `f64::tanh` and",
        "`f64::exp` (glibc). The portable x86-64 build above has SSE2 only, two lanes, while",
        "glibc picks an FMA implementation at run time.",
    ]
    if faults:
        lines += [
            "",
            "Page faults per evaluation in the same run (the bench counts them from `/proc/self/stat`,",
            "warm-up included). glibc's `free` gives the top of the heap back to the kernel when more",
            "than twice its current mmap threshold is free there, and the next evaluation faults",
            "every page in again: about 1,000 faults, some 2 ms, for the hand-written W4's 4 MB.",
            "Whether the top of the heap is free after an evaluation depends on what else the process",
            "has allocated above it, so the same code pays this in one run and not in another. The",
            "generated W4 frees 1 MB less there: its product's buffer stays in tape's per-thread",
            "workspace for the next call (`tape::workspace`).",
            "",
            *fault_table(faults),
        ]
    if native_rows:
        lines += [
            "",
            "### Built for this CPU",
            "",
            "The same benchmark built with `RUSTFLAGS=\"-C target-cpu=native\"` (AVX2 and FMA here), in",
            "its own run:",
            "",
            *speed_table(native_rows),
            "",
            "Page faults per evaluation in this run:",
            "",
            *fault_table(native_faults),
        ]
    if peer_rows:
        lines += [
            "",
            "## Against candle",
            "",
            "`peers/benches/candle.rs`: candle-core (CPU, `Var` + `backward`, Rosenbrock vectorized",
            "with `narrow` since candle has no cheap scalar indexing), timed in its own criterion run",
            "beside the generated and hand-written gradients, all on one thread (`RAYON_NUM_THREADS=1`:",
            "by default candle runs its matrix products on every core). Candle's gradients are",
            "checked first:",
            "",
            *[f"  - {c}" for c in peer_checks],
            "",
            "| workload | generated `_grad` | hand-written | candle | candle / generated |",
            "|---|---|---|---|---|",
        ]
        for group, gen, hand, candle in peer_rows:
            lines.append(f"| {group} | {fmt_time(gen)} | {fmt_time(hand)} | {fmt_time(candle)} | {candle / gen:.1f}× |")
        if native_peer_rows:
            lines += [
                "",
                "Everything built for this CPU (`RUSTFLAGS=\"-C target-cpu=native\"`, candle too), in its",
                "own run:",
                "",
                "| workload | generated `_grad` | hand-written | candle | candle / generated |",
                "|---|---|---|---|---|",
            ]
            for group, gen, hand, candle in native_peer_rows:
                lines.append(f"| {group} | {fmt_time(gen)} | {fmt_time(hand)} | {fmt_time(candle)} | {candle / gen:.1f}× |")
    if matmul_rows:
        lines += [
            "",
            "## Matrix-product kernels",
            "",
            "`peers/benches/matmul.rs`, f64, on the products of W1 and W4 (median, and GFLOP/s),",
            "each kernel on its own preallocated matrices. tape multiplies with ndarray's `dot`, that",
            "is matrixmultiply on one thread, with its AVX-512 kernel (as here: `peers/` depends on",
            "matrixmultiply with its default features, which include that kernel); tape's `faer`",
            "feature uses faer's kernel instead, and its",
            "`blas` feature the system's OpenBLAS (Debian's `libopenblas-dev`, threads from",
            "`OPENBLAS_NUM_THREADS`). matrixmultiply at 2 threads is its `threading` feature",
            "(`MATMUL_NUM_THREADS=2`), which tape does not enable: an application that wants it adds",
            "the feature to its own build. candle multiplies with the `gemm` crate, on as many threads",
            "as `RAYON_NUM_THREADS` says, by default one per core.",
            "",
            "faer's kernel is faster on these products, but it is not the default: in the portable",
            "build the SSE2 code that runs after it, the elementwise loops, runs up to 3× slower (W4's",
            "`tanh`, under `perf`), as after a kernel that leaves the upper halves of the vector",
            "registers in use; and it adds a minute and a half to a first release build. Built for the",
            "CPU, where the elementwise code is AVX2 too, the W1 and W4 gradients measured 11–13%",
            "faster with it (`tape-runtime/src/gemm.rs`).",
            "",
            "| product | " + " | ".join(KERNELS) + " |",
            "|---|" + "---|" * len(KERNELS),
        ]
        for name, cells in matmul_rows:
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Heap allocations per gradient evaluation",
        "",
        "`cargo bench --bench allocations` (dhat's counting allocator).",
        "",
        *allocs,
        "",
        "## Compile cost",
        "",
        "Functions of chained `tanh(y ⊙ a + b) ⊙ x` steps (`chain`) or of independent terms summed",
        "(`wide`). Expansion: the macro alone, release build, per expansion. `cargo check`: a",
        "scratch crate with that one function, dependencies already built, incremental as cargo's",
        "default; the median of three, each after checking another function.",
        "`cargo build --release`: the same crate, one build.",
        "",
        "| shape | nodes | expansion | cargo check | cargo build --release |",
        "|---|---|---|---|---|",
    ]
    for kind, nodes, ms, check, build in compile_rows:
        exp = f"{ms:.0f} ms" if ms is not None else "?"
        if build is None:
            built = "not measured"
        elif build == float("inf"):
            built = f"stopped after {RELEASE_TIMEOUT} s"
        else:
            built = f"{build:.1f} s"
        lines.append(f"| {kind} | {nodes} | {exp} | {check:.1f} s | {built} |")
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines) + "\n")
    print("wrote BENCHMARKS.md", file=sys.stderr)


if __name__ == "__main__":
    main()
