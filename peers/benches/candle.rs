//! The four workloads on candle (CPU, `Var` + `backward`): a runtime-tape peer, against tape's
//! generated `_grad` and the hand-written gradient, in the same criterion run. Candle's
//! gradients are checked against the hand-written ones before timing.
//!
//! Candle runs its matrix products on as many threads as `RAYON_NUM_THREADS` says, by default
//! one per core, and tape's and the hand-written gradients on one: `scripts/benchmarks.py`
//! compares them on one thread each.
//!
//! `cd peers && RAYON_NUM_THREADS=1 cargo bench --bench candle`

use candle_core::{D, Device, Tensor, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use ndarray::{Array, Array1, Array2, Dimension};
use std::hint::black_box;

#[path = "../../benches/workloads/mod.rs"]
mod workloads;

use workloads::{Chain, Matmul, Mlp, Rosenbrock};

type Result<T> = candle_core::Result<T>;

fn var2(a: &Array2<f64>) -> Result<Var> {
    let data: Vec<f64> = a.iter().copied().collect();
    Var::from_tensor(&Tensor::from_vec(data, a.dim(), &Device::Cpu)?)
}

fn var1(a: &Array1<f64>) -> Result<Var> {
    Var::from_tensor(&Tensor::from_vec(a.to_vec(), a.len(), &Device::Cpu)?)
}

fn const2(a: &Array2<f64>) -> Result<Tensor> {
    Ok(var2(a)?.as_tensor().detach())
}

fn to2(t: &Tensor) -> Result<Array2<f64>> {
    let rows = t.to_vec2::<f64>()?;
    let (r, c) = (rows.len(), rows.first().map_or(0, Vec::len));
    Ok(Array2::from_shape_vec((r, c), rows.into_iter().flatten().collect()).unwrap_or_default())
}

fn to1(t: &Tensor) -> Result<Array1<f64>> {
    Ok(Array1::from_vec(t.to_vec1::<f64>()?))
}

fn max_rel<D: Dimension>(a: &Array<f64, D>, b: &Array<f64, D>) -> f64 {
    tape::gradcheck::max_relative_error(a, b).0
}

/// W1 on candle: loss and the four parameter gradients.
fn mlp(
    w1: &Var,
    b1: &Var,
    w2: &Var,
    b2: &Var,
    x: &Tensor,
    y: &Tensor,
) -> Result<(f64, [Tensor; 4])> {
    let h = x
        .matmul(w1.as_tensor())?
        .broadcast_add(b1.as_tensor())?
        .tanh()?;
    let z = h.matmul(w2.as_tensor())?.broadcast_add(b2.as_tensor())?;
    let lse = z.log_sum_exp(D::Minus1)?.unsqueeze(1)?;
    let log_softmax = z.broadcast_sub(&lse)?;
    let rows = z.dim(0)? as f64;
    let loss = (log_softmax * y)?.sum_all()?.affine(-1.0 / rows, 0.0)?;
    let grads = loss.backward()?;
    let get = |v: &Var| {
        grads
            .get(v.as_tensor())
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))
    };
    Ok((
        loss.to_scalar::<f64>()?,
        [get(w1)?, get(b1)?, get(w2)?, get(b2)?],
    ))
}

/// W2 on candle.
fn chain(x: &Var, a: &Var, b: &Var) -> Result<(f64, [Tensor; 3])> {
    let mut y = x.as_tensor().clone();
    for _ in 0..64 {
        y = ((&y * a.as_tensor())? + b.as_tensor())?
            .tanh()?
            .mul(x.as_tensor())?;
    }
    let loss = y.sum_all()?;
    let grads = loss.backward()?;
    let get = |v: &Var| {
        grads
            .get(v.as_tensor())
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))
    };
    Ok((loss.to_scalar::<f64>()?, [get(x)?, get(a)?, get(b)?]))
}

/// W3 on candle, vectorized with `narrow` (candle's natural form: no scalar indexing).
fn rosenbrock(x: &Var) -> Result<(f64, Tensor)> {
    let t = x.as_tensor();
    let n = t.dim(0)?;
    let (head, tail) = (t.narrow(0, 0, n - 1)?, t.narrow(0, 1, n - 1)?);
    let a = (tail - head.sqr()?)?;
    let b = head.affine(-1.0, 1.0)?;
    let loss = (a.sqr()?.affine(100.0, 0.0)? + b.sqr()?)?.sum_all()?;
    let grads = loss.backward()?;
    let g = grads
        .get(t)
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))?;
    Ok((loss.to_scalar::<f64>()?, g))
}

/// W4 on candle.
fn matmul(w: &Var, x: &Tensor) -> Result<(f64, Tensor)> {
    let loss = x.matmul(w.as_tensor())?.tanh()?.sum_all()?;
    let grads = loss.backward()?;
    let g = grads
        .get(w.as_tensor())
        .cloned()
        .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))?;
    Ok((loss.to_scalar::<f64>()?, g))
}

fn check(name: &str, value: (f64, f64), errors: &[f64]) {
    let worst = errors
        .iter()
        .copied()
        .fold((value.0 - value.1).abs() / value.1.abs().max(1.0), f64::max);
    println!("{name}: candle vs hand-written, max relative error {worst:.1e}");
    assert!(
        worst < 1e-9,
        "{name}: candle disagrees with the hand-written gradient ({worst:e})"
    );
}

/// Times tape's generated gradient, the hand-written one and candle's in one group.
fn compare<A, B, C>(
    c: &mut Criterion,
    name: &str,
    samples: usize,
    generated: impl Fn() -> A,
    hand: impl Fn() -> B,
    candle: impl Fn() -> C,
) {
    let mut group = c.benchmark_group(format!("{name} (peers)"));
    group.sample_size(samples);
    group.bench_function("generated", |b| b.iter(|| black_box(generated())));
    group.bench_function("hand-written", |b| b.iter(|| black_box(hand())));
    group.bench_function("candle", |b| b.iter(|| black_box(candle())));
    group.finish();
}

fn benches(c: &mut Criterion) {
    println!("candle threads: {}", candle_core::utils::get_num_threads());
    let mut run = || -> Result<()> {
        let w = Mlp::new();
        let v = w.by_hand();
        let (w1, b1, w2, b2) = (var2(&w.w1)?, var1(&w.b1)?, var2(&w.w2)?, var1(&w.b2)?);
        let (x, y) = (const2(&w.x)?, const2(&w.y)?);
        let (loss, [g1, gb1, g2, gb2]) = mlp(&w1, &b1, &w2, &b2, &x, &y)?;
        check(
            "W1 mlp",
            (loss, v.0),
            &[
                max_rel(&to2(&g1)?, &v.1),
                max_rel(&to1(&gb1)?, &v.2),
                max_rel(&to2(&g2)?, &v.3),
                max_rel(&to1(&gb2)?, &v.4),
            ],
        );
        compare(
            c,
            "W1 mlp",
            50,
            || w.generated(),
            || w.by_hand(),
            || mlp(&w1, &b1, &w2, &b2, &x, &y),
        );

        let w = Chain::new();
        let v = w.by_hand();
        let (x, a, b) = (var1(&w.x)?, var1(&w.a)?, var1(&w.b)?);
        let (loss, [gx, ga, gb]) = chain(&x, &a, &b)?;
        check(
            "W2 chain",
            (loss, v.0),
            &[
                max_rel(&to1(&gx)?, &v.1),
                max_rel(&to1(&ga)?, &v.2),
                max_rel(&to1(&gb)?, &v.3),
            ],
        );
        compare(
            c,
            "W2 chain",
            50,
            || w.generated(),
            || w.by_hand(),
            || chain(&x, &a, &b),
        );

        let w = Rosenbrock::new();
        let v = w.by_hand();
        let x = var1(&w.x)?;
        let (loss, g) = rosenbrock(&x)?;
        check("W3 rosenbrock", (loss, v.0), &[max_rel(&to1(&g)?, &v.1)]);
        compare(
            c,
            "W3 rosenbrock",
            50,
            || w.generated(),
            || w.by_hand(),
            || rosenbrock(&x),
        );

        let w = Matmul::new();
        let v = w.by_hand();
        let (wv, x) = (var2(&w.w)?, const2(&w.x)?);
        let (loss, g) = matmul(&wv, &x)?;
        check("W4 matmul", (loss, v.0), &[max_rel(&to2(&g)?, &v.1)]);
        compare(
            c,
            "W4 matmul",
            20,
            || w.generated(),
            || w.by_hand(),
            || matmul(&wv, &x),
        );
        Ok(())
    };
    if let Err(e) = run() {
        panic!("candle: {e}");
    }
}

criterion_group!(peers, benches);
criterion_main!(peers);
