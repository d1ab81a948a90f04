//! Matrix-product kernels on the workloads' shapes: ndarray's `dot` (matrixmultiply, on as
//! many threads as `MATMUL_NUM_THREADS` says; with the `blas` feature, the system's OpenBLAS on
//! `OPENBLAS_NUM_THREADS`), faer (one thread and two) and candle (the `gemm` crate, on as many
//! threads as `RAYON_NUM_THREADS` says, by default one per core). GFLOP/s are computed from the
//! medians by `scripts/benchmarks.py`, which runs this five times: `MATMUL_NUM_THREADS=1`, then
//! `=2` for matrixmultiply alone, `RAYON_NUM_THREADS=1` for candle alone, then with the `blas`
//! feature for OpenBLAS alone at 1 and 2 threads.
//!
//! `cd peers && MATMUL_NUM_THREADS=1 cargo bench --bench matmul`

use candle_core::{Device, Tensor};
use criterion::{Criterion, criterion_group, criterion_main};
use faer::{Accum, Mat, Par};
use ndarray::Array2;
use std::hint::black_box;

#[path = "../../benches/workloads/mod.rs"]
mod workloads;

/// The shapes (m, k, n) of the products in W1 and W4, forward and backward.
const SHAPES: &[(&str, usize, usize, usize)] = &[
    ("W1 X·W1 64x784x128", 64, 784, 128),
    ("W4 X·W 256x512x512", 256, 512, 512),
    ("W4 XT·G 512x256x512", 512, 256, 512),
];

fn benches(c: &mut Criterion) {
    let (kernel, threads_var) = if cfg!(feature = "blas") {
        ("OpenBLAS", "OPENBLAS_NUM_THREADS")
    } else {
        ("matrixmultiply", "MATMUL_NUM_THREADS")
    };
    let threads = std::env::var(threads_var).unwrap_or_else(|_| "1".into());
    let ndarray_dot = match threads.as_str() {
        "1" => format!("{kernel} 1 thread"),
        n => format!("{kernel} {n} threads"),
    };
    let candle = match candle_core::utils::get_num_threads() {
        1 => "candle (gemm) 1 thread".to_string(),
        n => format!("candle (gemm) {n} threads"),
    };
    for &(name, m, k, n) in SHAPES {
        let a = workloads::matrix(m, k, 1);
        let b = workloads::matrix(k, n, 2);
        let fa = Mat::<f64>::from_fn(m, k, |i, j| a[[i, j]]);
        let fb = Mat::<f64>::from_fn(k, n, |i, j| b[[i, j]]);
        let ca = Tensor::from_vec(
            a.iter().copied().collect::<Vec<f64>>(),
            (m, k),
            &Device::Cpu,
        )
        .expect("candle");
        let cb = Tensor::from_vec(
            b.iter().copied().collect::<Vec<f64>>(),
            (k, n),
            &Device::Cpu,
        )
        .expect("candle");
        // The kernels agree before they are timed.
        let reference: Array2<f64> = a.dot(&b);
        let mut out = Mat::<f64>::zeros(m, n);
        faer::linalg::matmul::matmul(&mut out, Accum::Replace, &fa, &fb, 1.0, Par::Seq);
        let worst = (0..m)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .map(|(i, j)| (out[(i, j)] - reference[[i, j]]).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-10, "faer disagrees with ndarray by {worst:e}");
        let mut group = c.benchmark_group(format!("matmul {name}"));
        group.sample_size(30);
        group.bench_function(&ndarray_dot, |bench| {
            bench.iter(|| black_box(&a).dot(black_box(&b)))
        });
        group.bench_function("faer 1 thread", |bench| {
            bench.iter(|| {
                faer::linalg::matmul::matmul(
                    &mut out,
                    Accum::Replace,
                    black_box(&fa),
                    black_box(&fb),
                    1.0,
                    Par::Seq,
                )
            })
        });
        group.bench_function("faer 2 threads", |bench| {
            bench.iter(|| {
                faer::linalg::matmul::matmul(
                    &mut out,
                    Accum::Replace,
                    black_box(&fa),
                    black_box(&fb),
                    1.0,
                    Par::rayon(2),
                )
            })
        });
        group.bench_function(&candle, |bench| {
            bench.iter(|| black_box(&ca).matmul(black_box(&cb)).expect("candle"))
        });
        group.finish();
    }
}

criterion_group!(matmul, benches);
criterion_main!(matmul);
