//! Broadcasting: operands of different shapes combine like ndarray's operators, and every
//! gradient comes back summed over the broadcast axes, in its parameter's exact shape.

mod common;

use common::*;
use tape::prelude::*;

// z = x·w + b with b: [n] broadcast over the batch; f = Σ v ⊙ tanh(z)
// ∂f/∂b = column sums of v ⊙ (1 − tanh²(z)),  ∂f/∂w = xᵀ·(v ⊙ (1 − tanh²(z)))
#[differentiable]
fn dense(
    w: &Array2<f64>,
    b: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] v: &Array2<f64>,
) -> f64 {
    let z = x.dot(w) + b;
    (tanh(&z) * v).sum()
}

#[test]
fn bias_gradient_is_the_column_sums() {
    let (w, b) = (mat2(3, 2, 1, -1.0, 1.0), vec1(2, 2, -1.0, 1.0));
    let (x, v) = (mat2(5, 3, 3, -1.0, 1.0), mat2(5, 2, 4, -1.0, 1.0));
    let g = dense_grad(&w, &b, &x, &v).unwrap();
    let dz = &v * &(x.dot(&w) + &b).mapv(|z| 1.0 - z.tanh().powi(2));
    assert_eq!(g.b.shape(), &[2]);
    check_analytic("bias", &g.b, &dz.sum_axis(Axis(0)));
    check_analytic("weights", &g.w, &x.t().dot(&dz));
    check_fd("bias", &g.b, &b, |b| dense(&w, b, &x, &v));
    check_fd("weights", &g.w, &w, |w| dense(w, &b, &x, &v));
}

// [n, 1] ⊙ [1, m] → [n, m]; f = Σ (c ⊙ r)²:  ∂f/∂cᵢ = 2cᵢ·Σⱼ rⱼ²,  ∂f/∂rⱼ = 2rⱼ·Σᵢ cᵢ²
#[differentiable]
fn outer(c: &Array2<f64>, r: &Array2<f64>) -> f64 {
    (c * r).powi(2).sum()
}

#[test]
fn unit_axes_on_both_sides() {
    let (c, r) = (mat2(4, 1, 5, -1.0, 1.0), mat2(1, 3, 6, -1.0, 1.0));
    let g = outer_grad(&c, &r).unwrap();
    assert_eq!(g.c.shape(), &[4, 1]);
    assert_eq!(g.r.shape(), &[1, 3]);
    check_analytic("column", &g.c, &(2.0 * &c * r.mapv(|v| v * v).sum()));
    check_analytic("row", &g.r, &(2.0 * &r * c.mapv(|v| v * v).sum()));
    check_fd("column", &g.c, &c, |c| outer(c, &r));
    check_fd("row", &g.r, &r, |r| outer(&c, r));
}

// A scalar parameter broadcast over a 3-d array: f = Σ exp(s·x) / s
// ∂f/∂s = Σ (x·exp(s·x)/s − exp(s·x)/s²),  ∂f/∂x = exp(s·x)
#[differentiable]
fn scaled(s: f64, x: &Array3<f64>) -> f64 {
    ((s * x).exp() / s).sum()
}

#[test]
fn scalar_broadcast_over_an_array() {
    let (s, x) = (
        0.8,
        det(&[2, 3, 2], 7, -1.0, 1.0)
            .into_dimensionality::<Ix3>()
            .unwrap(),
    );
    let g = scaled_grad(s, &x).unwrap();
    let e = x.mapv(|v| (s * v).exp());
    check_analytic_scalar("scalar", g.s, (&x * &e / s - &e / (s * s)).sum());
    check_analytic("array", &g.x, &e);
    check_fd_scalar("scalar", g.s, s, |s| scaled(s, &x));
    check_fd("array", &g.x, &x, |x| scaled(s, x));
}

// Different dimension types: [2, 3, 4] − [3, 4] and a dynamic-dimension parameter.
// f = Σ (a − b)² with b broadcast over the first axis:  ∂f/∂b = −2 Σ₀ (a − b)
#[differentiable]
fn mixed_ranks(a: &Array3<f64>, b: &ArrayD<f64>) -> f64 {
    let d = a - b;
    (&d * &d).sum()
}

#[test]
fn mixed_dimension_types() {
    let a = det(&[2, 3, 4], 8, -1.0, 1.0)
        .into_dimensionality::<Ix3>()
        .unwrap();
    let b = det(&[3, 4], 9, -1.0, 1.0);
    let g = mixed_ranks_grad(&a, &b).unwrap();
    assert_eq!(g.b.shape(), &[3, 4]);
    let d = &a - &b;
    check_analytic("dynamic", &g.b, &(-2.0 * d.sum_axis(Axis(0))).into_dyn());
    check_fd("dynamic", &g.b, &b, |b| mixed_ranks(&a, b));
    check_fd("static", &g.a, &a, |a| mixed_ranks(a, &b));
}
