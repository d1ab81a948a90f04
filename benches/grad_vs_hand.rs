//! The generated gradient against the same gradient written by hand with ndarray, measured in
//! the same run. Report the ratio `generated / hand-written`, not absolute times.
//!
//! `cargo bench --bench grad_vs_hand`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tape::prelude::*;

/// A one-layer regression: z = x·w + b, h = tanh(z), L = mse(h, y).
#[differentiable]
fn layer(
    w: &Array2<f64>,
    b: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] y: &Array2<f64>,
) -> f64 {
    let z = x.dot(w) + b;
    let h = tanh(&z);
    mse(&h, y)
}

/// `layer`'s value and gradient, by hand: the baseline.
fn layer_by_hand(
    w: &Array2<f64>,
    b: &Array1<f64>,
    x: &Array2<f64>,
    y: &Array2<f64>,
) -> (f64, Array2<f64>, Array1<f64>) {
    let mut h = x.dot(w) + b;
    h.mapv_inplace(f64::tanh);
    let n = h.len() as f64;
    let mut d = &h - y;
    let loss = d.iter().map(|v| v * v).sum::<f64>() / n;
    ndarray::Zip::from(&mut d)
        .and(&h)
        .for_each(|d, &h| *d *= 2.0 / n * (1.0 - h * h));
    let gb = d.sum_axis(Axis(0));
    let gw = x.t().dot(&d);
    (loss, gw, gb)
}

/// Many small nodes: y = tanh(y ⊙ a + b) ⊙ x, eight times, on vectors of 16.
#[differentiable]
fn chain(x: &Array1<f64>, a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    let y = tanh(&(x * a + b)) * x;
    let y = tanh(&(&y * a + b)) * x;
    let y = tanh(&(&y * a + b)) * x;
    let y = tanh(&(&y * a + b)) * x;
    let y = tanh(&(&y * a + b)) * x;
    let y = tanh(&(&y * a + b)) * x;
    let y = tanh(&(&y * a + b)) * x;
    let y = tanh(&(&y * a + b)) * x;
    y.sum()
}

/// `chain`'s gradient by hand, keeping each step's tanh for the reverse sweep.
fn chain_by_hand(
    x: &Array1<f64>,
    a: &Array1<f64>,
    b: &Array1<f64>,
) -> (f64, Array1<f64>, Array1<f64>, Array1<f64>) {
    const STEPS: usize = 8;
    let mut ys = Vec::with_capacity(STEPS + 1);
    let mut ts = Vec::with_capacity(STEPS);
    ys.push(x.clone());
    for _ in 0..STEPS {
        let t = (ys.last().map(|y| y * a).unwrap_or_default() + b).mapv(f64::tanh);
        ys.push(&t * x);
        ts.push(t);
    }
    let value = ys[STEPS].sum();
    let (mut gx, mut ga, mut gb) = (
        Array1::zeros(x.len()),
        Array1::zeros(x.len()),
        Array1::zeros(x.len()),
    );
    let mut gy = Array1::ones(x.len());
    for step in (0..STEPS).rev() {
        let t = &ts[step];
        gx += &(&gy * t);
        let gu = &gy * x * t.mapv(|t| 1.0 - t * t);
        ga += &(&gu * &ys[step]);
        gb += &gu;
        gy = &gu * a;
    }
    gx += &gy;
    (value, gx, ga, gb)
}

fn det(shape: (usize, usize), seed: u64) -> Array2<f64> {
    let sample = tape::gradcheck::sample(&[shape.0, shape.1], seed, -0.5, 0.5);
    sample.into_dimensionality().expect("2-d")
}

fn max_rel<D: ndarray::Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    tape::gradcheck::max_relative_error(a, b).0
}

fn benches(c: &mut Criterion) {
    let (x, y) = (det((64, 32), 1), det((64, 8), 2));
    let (w, b) = (det((32, 8), 3), det((1, 8), 4).row(0).to_owned());
    let (value, gw, gb) = layer_by_hand(&w, &b, &x, &y);
    let g = layer_grad(&w, &b, &x, &y).expect("layer_grad");
    println!(
        "layer: |value − hand| = {:e}, max rel err w {:e}, b {:e}",
        (g.value - value).abs(),
        max_rel(&g.w, &gw),
        max_rel(&g.b, &gb)
    );
    let mut group = c.benchmark_group("layer 64x32x8");
    group.bench_function("forward", |bench| {
        bench.iter(|| layer(black_box(&w), &b, &x, &y))
    });
    group.bench_function("generated", |bench| {
        bench.iter(|| layer_grad(black_box(&w), &b, &x, &y))
    });
    group.bench_function("hand-written", |bench| {
        bench.iter(|| layer_by_hand(black_box(&w), &b, &x, &y))
    });
    group.finish();

    let (x, a, b) = (
        det((1, 16), 5).row(0).to_owned(),
        det((1, 16), 6).row(0).to_owned(),
        det((1, 16), 7).row(0).to_owned(),
    );
    let (value, gx, ga, gb) = chain_by_hand(&x, &a, &b);
    let g = chain_grad(&x, &a, &b).expect("chain_grad");
    println!(
        "chain: |value − hand| = {:e}, max rel err x {:e}, a {:e}, b {:e}",
        (g.value - value).abs(),
        max_rel(&g.x, &gx),
        max_rel(&g.a, &ga),
        max_rel(&g.b, &gb)
    );
    let mut group = c.benchmark_group("chain 8x16");
    group.bench_function("forward", |bench| {
        bench.iter(|| chain(black_box(&x), &a, &b))
    });
    group.bench_function("generated", |bench| {
        bench.iter(|| chain_grad(black_box(&x), &a, &b))
    });
    group.bench_function("hand-written", |bench| {
        bench.iter(|| chain_by_hand(black_box(&x), &a, &b))
    });
    group.finish();
}

criterion_group!(grad_vs_hand, benches);
criterion_main!(grad_vs_hand);
