//! The accepted language beyond straight-line code: reassignment, unrolled loops, branches,
//! calls between differentiable functions, generic floats and auxiliary outputs. Every
//! gradient is checked against a hand-derived one and against central differences.

// `y = y + x` is what reassignment tests are written in.
#![allow(clippy::assign_op_pattern)]

mod common;

use common::*;
use tape::prelude::*;

// Reassignment and compound assignment lower to fresh nodes.
// y = tanh(x·a); y = y + x; y *= 2 → f = Σ 2(tanh(x a) + x)
// ∂f/∂x = 2(a(1 − tanh²(x a)) + 1),  ∂f/∂a = 2x(1 − tanh²(x a))
#[differentiable]
fn reassigned(x: &Array1<f64>, a: f64) -> f64 {
    let mut y = tanh(&(x * a));
    y = y + x;
    y *= 2.0;
    y.sum()
}

#[test]
fn reassignment_makes_fresh_nodes() {
    let (x, a) = (vec1(5, 1, -1.0, 1.0), 0.7);
    let g = reassigned_grad(&x, a).unwrap();
    assert_eq!(g.value, reassigned(&x, a));
    let sech2 = x.mapv(|v| 1.0 - (v * a).tanh().powi(2));
    check_analytic("x", &g.x, &(2.0 * (a * &sech2 + 1.0)));
    check_analytic_scalar("a", g.a, (2.0 * &x * &sech2).sum());
    check_fd("x", &g.x, &x, |x| reassigned(x, a));
    check_fd_scalar("a", g.a, a, |a| reassigned(&x, a));
    let names: Vec<_> = ReassignedTape::NODES
        .iter()
        .filter_map(|n| n.name)
        .collect();
    assert_eq!(names, ["x", "a", "y", "y", "y"]);
}

// The chain of the speed benchmark: y = x; 8 times y = tanh(y ⊙ a + b) ⊙ x; f = Σ y.
#[differentiable]
fn chain(x: &Array1<f64>, a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    const STEPS: usize = 8;
    let mut y = x.clone();
    for _ in 0..STEPS {
        y = tanh(&(&y * a + b)) * x;
    }
    y.sum()
}

/// `chain`'s gradient by hand: the forward keeps each step's tanh.
fn chain_by_hand(x: &Array1<f64>, a: &Array1<f64>, b: &Array1<f64>) -> [Array1<f64>; 3] {
    let (mut ys, mut ts) = (vec![x.clone()], Vec::new());
    for step in 0..8 {
        let t = (&ys[step] * a + b).mapv(f64::tanh);
        ys.push(&t * x);
        ts.push(t);
    }
    let n = x.len();
    let (mut gx, mut ga, mut gb, mut gy) = (
        Array1::zeros(n),
        Array1::zeros(n),
        Array1::zeros(n),
        Array1::ones(n),
    );
    for step in (0..8).rev() {
        let t = &ts[step];
        gx += &(&gy * t);
        let gu = &gy * x * t.mapv(|t| 1.0 - t * t);
        ga += &(&gu * &ys[step]);
        gb += &gu;
        gy = &gu * a;
    }
    gx += &gy;
    [gx, ga, gb]
}

#[test]
fn a_loop_with_a_constant_trip_count() {
    let (x, a, b) = (
        vec1(6, 2, -1.0, 1.0),
        vec1(6, 3, -1.0, 1.0),
        vec1(6, 4, -1.0, 1.0),
    );
    let g = chain_grad(&x, &a, &b).unwrap();
    assert_eq!(g.value, chain(&x, &a, &b));
    let [gx, ga, gb] = chain_by_hand(&x, &a, &b);
    check_analytic("x", &g.x, &gx);
    check_analytic("a", &g.a, &ga);
    check_analytic("b", &g.b, &gb);
    check_fd("x", &g.x, &x, |x| chain(x, &a, &b));
    // Every iteration has its own nodes, named after the iteration.
    let names: Vec<_> = ChainTape::NODES.iter().filter_map(|n| n.name).collect();
    assert_eq!(names.iter().filter(|n| n.starts_with("y#")).count(), 8);
    assert!(
        names.contains(&"y#0") && names.contains(&"y#7"),
        "{names:?}"
    );
}

// Nested loops, an inclusive range, a reversed range, a bound that is an outer index, and the
// index as a number: f = Σ_{i=0..=2} Σ_{j<i} (i + j)·x² + Σ_{k=3,2,1,0} k·x
// ∂f/∂x = 2x·Σ(i + j) + 6 = 2x·(1 + 2 + 3) + 6 with (i, j) ∈ {(1,0), (2,0), (2,1)}
#[differentiable]
fn nested(x: f64) -> f64 {
    let mut total = 0.0 * x;
    for i in 0..=2 {
        for j in 0..i {
            total += (i as f64 + j as f64) * x.powi(2);
        }
    }
    for k in (0..4).rev() {
        total = total + (k as f64) * x;
    }
    total
}

#[test]
fn nested_and_reversed_loops() {
    let g = nested_grad(1.5).unwrap();
    assert_eq!(g.value, nested(1.5));
    check_analytic_scalar("nested", g.x, 2.0 * 1.5 * 6.0 + 6.0);
    check_fd_scalar("nested", g.x, 1.5, nested);
    let names: Vec<_> = NestedTape::NODES.iter().filter_map(|n| n.name).collect();
    assert!(
        names.contains(&"total#2#1") && names.contains(&"total#0"),
        "{names:?}"
    );
}

// Branches on non-differentiable values: only the taken arm runs.
// f = Σ relu-like piece: if mode > 0 { Σ x² } else if mode < 0 { Σ exp(x) } else { Σ x }
#[differentiable]
fn piecewise(x: &Array1<f64>, mode: i32) -> f64 {
    if mode > 0 {
        let sq = x * x;
        sq.sum()
    } else if mode < 0 {
        x.exp().sum()
    } else {
        x.sum()
    }
}

#[test]
fn branches_run_only_the_taken_arm() {
    let x = vec1(4, 5, -1.0, 1.0);
    for (mode, expected) in [(1, 2.0 * &x), (-1, x.mapv(f64::exp)), (0, Array1::ones(4))] {
        let g = piecewise_grad(&x, mode).unwrap();
        assert_eq!(g.value, piecewise(&x, mode));
        check_analytic(&format!("mode {mode}"), &g.x, &expected);
        check_fd(&format!("mode {mode}"), &g.x, &x, |x| piecewise(x, mode));
    }
    // The untaken arms' nodes are on the tape but unreached: None in backward_dense.
    let t = PiecewiseTape::record(&x, 1).unwrap();
    let dense = t
        .backward_dense(PiecewiseTape::OUTPUT, AnyTensor::scalar(1.0))
        .unwrap();
    let exp_node = PiecewiseTape::NODES
        .iter()
        .find(|n| n.op == "exp")
        .unwrap()
        .id;
    assert!(dense[exp_node].is_none());
    assert!(t.value(exp_node).is_err(), "the untaken arm never ran");
    let all = t
        .backward_dense_all(PiecewiseTape::OUTPUT, AnyTensor::scalar(1.0))
        .unwrap();
    assert_eq!(all[0], AnyTensor::from(2.0 * &x));
    let back = t.backward().unwrap();
    assert_eq!(back[&0], AnyTensor::from(2.0 * &x));
}

// A branch as a statement that reassigns, on a no_grad input and a detached value.
// y = x; if flip { y = -y }; if detach(&y).sum() > 0 { y = y * 3 }; f = Σ y·w
#[differentiable]
fn flips(x: &Array1<f64>, w: &Array1<f64>, #[no_grad] flip: f64) -> f64 {
    let mut y = x * 1.0;
    if flip > 0.0 {
        y = -y;
    }
    if detach(&y).sum() > 0.0 {
        y = y * 3.0;
    }
    (y * w).sum()
}

#[test]
fn branches_that_reassign() {
    let (x, w) = (array![1.0, 2.0], array![0.5, -1.0]);
    for flip in [1.0, -1.0] {
        let g = flips_grad(&x, &w, flip).unwrap();
        assert_eq!(g.value, flips(&x, &w, flip));
        // sign = −1 if flipped; scale = 3 if sign·Σx > 0
        let sign = if flip > 0.0 { -1.0 } else { 1.0 };
        let scale = if sign * x.sum() > 0.0 { 3.0 } else { 1.0 };
        check_analytic("x", &g.x, &(sign * scale * &w));
        check_analytic("w", &g.w, &(sign * scale * &x));
        check_fd("x", &g.x, &x, |x| flips(x, &w, flip));
    }
}

// Calls between differentiable functions, through a module path, with array outputs.
mod nn {
    use tape::prelude::*;

    /// A dense layer: h = tanh(x·w + b).
    #[differentiable]
    pub fn layer(w: &Array2<f64>, b: &Array1<f64>, x: &Array2<f64>) -> Array2<f64> {
        tanh(&(x.dot(w) + b))
    }
}

/// A scaled square, called twice with a scalar.
#[differentiable]
fn square(s: f64) -> f64 {
    s * s
}

// Two layers and a loss: gradients flow through both calls into the caller's parameters.
#[differentiable]
fn two_layers(
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] y: &Array2<f64>,
    c: f64,
) -> f64 {
    let h = nn::layer(w1, b1, x);
    let out = nn::layer(w2, b2, &h);
    mse(&out, y) + square(c) * square(2.0 * c)
}

fn two_layers_by_hand(
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    x: &Array2<f64>,
    y: &Array2<f64>,
) -> [Array2<f64>; 2] {
    let h = (x.dot(w1) + b1).mapv(f64::tanh);
    let out = (h.dot(w2) + b2).mapv(f64::tanh);
    let d_out = 2.0 / out.len() as f64 * (&out - y) * out.mapv(|o| 1.0 - o * o);
    let d_h = d_out.dot(&w2.t()) * h.mapv(|v| 1.0 - v * v);
    [x.t().dot(&d_h), h.t().dot(&d_out)]
}

#[test]
fn calls_between_differentiable_functions() {
    let (w1, b1) = (mat2(3, 4, 6, -1.0, 1.0), vec1(4, 7, -1.0, 1.0));
    let (w2, b2) = (mat2(4, 2, 8, -1.0, 1.0), vec1(2, 9, -1.0, 1.0));
    let (x, y) = (mat2(5, 3, 10, -1.0, 1.0), mat2(5, 2, 11, -1.0, 1.0));
    let g = two_layers_grad(&w1, &b1, &w2, &b2, &x, &y, 0.3).unwrap();
    assert_eq!(g.value, two_layers(&w1, &b1, &w2, &b2, &x, &y, 0.3));
    let [gw1, gw2] = two_layers_by_hand(&w1, &b1, &w2, &b2, &x, &y);
    check_analytic("w1", &g.w1, &gw1);
    check_analytic("w2", &g.w2, &gw2);
    // d/dc (c²·4c²) = 16c³
    check_analytic_scalar("c", g.c, 16.0 * 0.3_f64.powi(3));
    check_fd("b1", &g.b1, &b1, |b1| {
        two_layers(&w1, b1, &w2, &b2, &x, &y, 0.3)
    });
    check_fd("b2", &g.b2, &b2, |b2| {
        two_layers(&w1, &b1, &w2, b2, &x, &y, 0.3)
    });
    // The recorded tape reaches the same gradients through the callees' tapes.
    let t = TwoLayersTape::record(&w1, &b1, &w2, &b2, &x, &y, 0.3).unwrap();
    let back = t.backward().unwrap();
    assert_eq!(back[&0], AnyTensor::from(g.w1.clone()));
    assert_eq!(back[&3], AnyTensor::from(g.b2.clone()));
    assert_eq!(back[&6], AnyTensor::scalar(g.c));
    let ops: Vec<_> = TwoLayersTape::NODES.iter().map(|n| n.op).collect();
    assert!(
        ops.contains(&"nn::layer") && ops.contains(&"square"),
        "{ops:?}"
    );
    // A function with an array output has a seeded tape and a pullback.
    let lt = nn::LayerTape::record(&w1, &b1, &x).unwrap();
    let seeded = lt
        .backward_dense(
            nn::LayerTape::OUTPUT,
            AnyTensor::from(Array2::<f64>::ones((5, 4))),
        )
        .unwrap();
    assert!(seeded[0].is_some());
}

// Generic floats: one function, both precisions.
#[differentiable]
fn generic_loss<F: tape::Float>(w: &Array1<F>, #[no_grad] x: &Array2<F>) -> F {
    let z = x.dot(w);
    let half = F::from_f64(0.5);
    (tanh(&z) * half).sum()
}

#[test]
fn generic_floats() {
    let (w, x) = (vec1(3, 12, -1.0, 1.0), mat2(4, 3, 13, -1.0, 1.0));
    let g64 = generic_loss_grad::<f64>(&w, &x).unwrap();
    let g32 = generic_loss_grad::<f32>(&w.mapv(|v| v as f32), &x.mapv(|v| v as f32)).unwrap();
    assert_eq!(g64.value, generic_loss(&w, &x));
    // ∂/∂w Σ ½ tanh(x·w) = ½ xᵀ(1 − tanh²)
    let expected = 0.5 * x.t().dot(&x.dot(&w).mapv(|z| 1.0 - z.tanh().powi(2)));
    check_analytic("w", &g64.w, &expected);
    let (err, _) = tape::gradcheck::max_relative_error(&g32.w.mapv(f64::from), &expected);
    assert!(err < 1e-5, "f32 relative error {err:e}");
    let t = GenericLossTape::<f32>::record(&w.mapv(|v| v as f32), &x.mapv(|v| v as f32)).unwrap();
    assert_eq!(t.backward().unwrap()[&0], AnyTensor::from(g32.w));
}

// Auxiliary outputs: the first element is differentiated, the rest passed through.
#[differentiable]
fn with_aux(w: &Array1<f64>, #[no_grad] x: &Array2<f64>) -> (f64, Array1<f64>, usize) {
    let pred = x.dot(w);
    let positive = detach(&pred).iter().filter(|&&p| p > 0.0).count();
    (pred.sum(), pred, positive)
}

#[test]
fn auxiliary_outputs() {
    let (w, x) = (vec1(3, 14, -1.0, 1.0), mat2(4, 3, 15, -1.0, 1.0));
    let g = with_aux_grad(&w, &x).unwrap();
    let (value, pred, positive) = with_aux(&w, &x);
    assert_eq!(g.value, value);
    assert_eq!(g.aux, (pred, positive));
    check_analytic("w", &g.w, &x.sum_axis(Axis(0)));
}

// Every feature together: a recurrent cell called in an unrolled loop, a branch on an integer
// input, generic floats and an auxiliary output (the last hidden state).
mod cells {
    use tape::prelude::*;
    #[differentiable]
    pub fn cell<F: tape::Float>(
        h: &Array1<F>,
        w: &Array2<F>,
        u: &Array2<F>,
        #[no_grad] x: &Array1<F>,
    ) -> Array1<F> {
        tanh(&(w.dot(h) + u.dot(x)))
    }
}

#[differentiable]
fn rnn<F: tape::Float>(
    w: &Array2<F>,
    u: &Array2<F>,
    v: &Array1<F>,
    #[no_grad] xs: &Array2<F>,
    #[no_grad] target: F,
    steps: usize,
) -> (F, Array1<F>) {
    const T: usize = 3;
    let mut h = v * F::from_f64(0.0);
    for t in 0..T {
        let x = xs.row(t).to_owned();
        h = cells::cell(&h, w, u, &x);
        if t + 1 == steps {
            h = h * F::from_f64(2.0);
        }
    }
    let out = h.dot(v);
    let diff = out - target;
    (diff * diff, h)
}

#[test]
fn every_feature_together() {
    let w = tape::gradcheck::sample(&[4, 4], 1, -0.5, 0.5)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let u = tape::gradcheck::sample(&[4, 2], 2, -0.5, 0.5)
        .into_dimensionality::<Ix2>()
        .unwrap();
    let v = tape::gradcheck::sample(&[4], 3, -0.5, 0.5)
        .into_dimensionality::<Ix1>()
        .unwrap();
    let xs = tape::gradcheck::sample(&[3, 2], 4, -1.0, 1.0)
        .into_dimensionality::<Ix2>()
        .unwrap();
    for steps in [1, 2, 5] {
        let g = rnn_grad(&w, &u, &v, &xs, 0.3, steps).unwrap();
        assert_eq!(g.value, rnn(&w, &u, &v, &xs, 0.3, steps).0);
        let n = tape::gradcheck::numeric_gradient(|w| rnn(w, &u, &v, &xs, 0.3, steps).0, &w, 1e-6);
        tape::gradcheck::assert_grad_close("w", &g.w, &n, 1e-7);
        let n = tape::gradcheck::numeric_gradient(|v| rnn(&w, &u, v, &xs, 0.3, steps).0, &v, 1e-6);
        tape::gradcheck::assert_grad_close("v", &g.v, &n, 1e-7);
    }
    let g32 = rnn_grad::<f32>(
        &w.mapv(|a| a as f32),
        &u.mapv(|a| a as f32),
        &v.mapv(|a| a as f32),
        &xs.mapv(|a| a as f32),
        0.3,
        2,
    )
    .unwrap();
    let g64 = rnn_grad(&w, &u, &v, &xs, 0.3, 2).unwrap();
    assert!((f64::from(g32.value) - g64.value).abs() < 1e-6);
    assert_eq!(g64.aux, rnn(&w, &u, &v, &xs, 0.3, 2).1);
}

// Indexing with constant indices: the extended Rosenbrock function on 8 values.
// f = Σ_{i<7} 100(x_{i+1} − x_i²)² + (1 − x_i)²
#[differentiable]
fn rosenbrock(x: &Array1<f64>) -> f64 {
    let mut total = 0.0;
    for i in 0..7 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        total += 100.0 * a * a + b * b;
    }
    total
}

#[test]
fn indexing_with_constant_indices() {
    let x = vec1(8, 21, -1.0, 1.0);
    let g = rosenbrock_grad(&x).unwrap();
    assert_eq!(g.value, rosenbrock(&x));
    let mut expected = Array1::zeros(8);
    for i in 0..7 {
        let a = x[i + 1] - x[i] * x[i];
        expected[i] += -400.0 * a * x[i] - 2.0 * (1.0 - x[i]);
        expected[i + 1] += 200.0 * a;
    }
    check_analytic("rosenbrock", &g.x, &expected);
    check_fd("rosenbrock", &g.x, &x, rosenbrock);
    let t = RosenbrockTape::record(&x).unwrap();
    assert_eq!(t.backward().unwrap()[&0], AnyTensor::from(g.x));
}
