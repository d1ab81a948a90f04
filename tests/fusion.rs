//! Fused elementwise groups: `_grad` computes a run of elementwise array ops in one loop over
//! strips of elements. Checked against hand-derived gradients, central differences, and the
//! recorded tape (which runs the op-by-op kernels), on the fused path (including bias rows
//! read cyclically) and on the op-by-op fallback (other broadcasting, non-standard layout).

mod common;

use common::*;
use ndarray::{Array1, Array2, Ix2, ShapeBuilder};
use tape::gradcheck::assert_grad_close;
use tape::prelude::*;

// Every fusable op in one group (the sum ends it). Inputs in [0.5, 1.5], so `sqrt` and
// `powf` stay on the positive half-line.
#[differentiable]
fn every_op(x: &Array2<f64>, y: &Array2<f64>) -> f64 {
    let a = x * y + x / y - (-x);
    let b = exp(&(&a * 0.25)).sqrt();
    let c = b.powi(3).powf(0.5);
    let d = abs(&(sin(&c) + cos(&a)));
    let e = sigmoid(&tanh(&d)) + relu(&(&a - 2.5)) + softplus(&c) + gelu(&b);
    let f = maximum(&e, &b) + minimum(&e, &c);
    f.sum()
}

/// The recorded tape's gradient (op-by-op kernels) for parameter `id`.
fn recorded(x: &Array2<f64>, y: &Array2<f64>, id: usize) -> Array2<f64> {
    let t = EveryOpTape::record(x, y).unwrap();
    let g = t.backward().unwrap();
    g[&id]
        .as_array()
        .clone()
        .into_dimensionality::<Ix2>()
        .unwrap()
}

#[test]
fn every_fusable_op_in_one_group() {
    let x = mat2(3, 5, 1, 0.5, 1.5);
    let y = mat2(3, 5, 2, 0.5, 1.5);
    let g = every_op_grad(&x, &y).unwrap();
    assert_eq!(g.value, every_op(&x, &y));
    assert_grad_close("∂/∂x fused vs op by op", &g.x, &recorded(&x, &y, 0), 1e-14);
    assert_grad_close("∂/∂y fused vs op by op", &g.y, &recorded(&x, &y, 1), 1e-14);
    check_fd("∂/∂x", &g.x, &x, |x| every_op(x, &y));
    check_fd("∂/∂y", &g.y, &y, |y| every_op(&x, y));
}

#[test]
fn non_standard_layout_falls_back_to_kernels() {
    let x = mat2(3, 5, 1, 0.5, 1.5);
    let y = mat2(3, 5, 2, 0.5, 1.5);
    // The same values in column-major order: no contiguous slice in standard order.
    let mut yf = Array2::zeros((3, 5).f());
    yf.assign(&y);
    let g = every_op_grad(&x, &yf).unwrap();
    let expected = every_op_grad(&x, &y).unwrap();
    assert_eq!(g.value, expected.value);
    assert_grad_close("∂/∂x", &g.x, &expected.x, 1e-14);
    assert_grad_close("∂/∂y", &g.y, &expected.y, 1e-14);
}

// A bias row broadcast over a batch: fused, the row read cyclically and its gradient summed
// over the rows. A column `[n, 1]` broadcasts along the last axis instead: op by op.
// f = Σ tanh(x + b)²;  ∂f/∂b_j = Σ_i 2·t_ij·(1 − t_ij²)
#[differentiable]
fn biased(x: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let t = tanh(&(x + b));
    (&t * &t).sum()
}

#[test]
fn bias_rows_fuse_and_columns_fall_back() {
    // 4 × 3 = 12 elements: a partial last strip, and rows that straddle strips.
    let x = mat2(4, 3, 3, -1.0, 1.0);
    let b = vec1(3, 4, -1.0, 1.0);
    let g = biased_grad(&x, &b).unwrap();
    let t = (&x + &b).mapv(f64::tanh);
    let gx = t.mapv(|t| 2.0 * t * (1.0 - t * t));
    check_analytic("∂/∂x", &g.x, &gx);
    check_analytic("∂/∂b", &g.b, &gx.sum_axis(ndarray::Axis(0)));
    check_fd("∂/∂b", &g.b, &b, |b| biased(&x, b));
    let recorded = BiasedTape::record(&x, &b).unwrap().backward().unwrap();
    assert_grad_close(
        "∂/∂b fused vs op by op",
        &g.b,
        &recorded[&1]
            .as_array()
            .clone()
            .into_dimensionality()
            .unwrap(),
        1e-15,
    );

    let column = vec1(4, 5, -1.0, 1.0).into_shape_with_order((4, 1)).unwrap();
    let g = columned_grad(&x, &column).unwrap();
    assert_eq!(g.value, columned(&x, &column));
    let t = (&x + &column).mapv(f64::tanh);
    let gx = t.mapv(|t| 2.0 * t * (1.0 - t * t));
    check_analytic("∂/∂x", &g.x, &gx);
    check_analytic(
        "∂/∂c",
        &g.c,
        &gx.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1)),
    );
}

#[test]
fn a_batch_of_one_row_keeps_its_rank() {
    // x [1, 3] and b [3] have as many elements: the group runs over x's shape, not b's.
    for (rows, cols) in [(1, 3), (1, 1)] {
        let x = mat2(rows, cols, 6, -1.0, 1.0);
        let b = vec1(cols, 7, -1.0, 1.0);
        let g = biased_grad(&x, &b).unwrap();
        assert_eq!(g.value, biased(&x, &b));
        let t = (&x + &b).mapv(f64::tanh);
        let gx = t.mapv(|t| 2.0 * t * (1.0 - t * t));
        check_analytic("∂/∂x", &g.x, &gx);
        check_analytic("∂/∂b", &g.b, &gx.sum_axis(ndarray::Axis(0)));
        check_fd("∂/∂x", &g.x, &x, |x| biased(x, &b));
        check_fd("∂/∂b", &g.b, &b, |b| biased(&x, b));
    }
}

#[differentiable]
fn columned(x: &Array2<f64>, c: &Array2<f64>) -> f64 {
    let t = tanh(&(x + c));
    (&t * &t).sum()
}

// A group output computed from the bias row alone is a row, not a batch: the group runs op by
// op. f = Σ (x + 2b) + Σ 2b;  ∂f/∂b_j = 2·rows + 2
#[differentiable]
fn row_output(x: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let bb = b * 2.0;
    let y = x + &bb;
    y.sum() + bb.sum()
}

#[test]
fn outputs_that_are_rows_fall_back() {
    let x = mat2(4, 3, 6, -1.0, 1.0);
    let b = vec1(3, 7, -1.0, 1.0);
    let g = row_output_grad(&x, &b).unwrap();
    assert_eq!(g.value, row_output(&x, &b));
    check_analytic("∂/∂b", &g.b, &Array1::from_elem(3, 2.0 * 4.0 + 2.0));
    check_analytic("∂/∂x", &g.x, &Array2::ones((4, 3)));
}

// A scalar parameter inside a group over 13 elements (a partial last strip), dividing by the
// elements: the padding lanes divide by zero, and must not leak into ∂f/∂k.
// f = Σ k/x + k·x;  ∂f/∂k = Σ 1/x + x,  ∂f/∂x = −k/x² + k
#[differentiable]
fn scaled(x: &Array1<f64>, k: f64) -> f64 {
    (k / x + x * k).sum()
}

#[test]
fn scalar_inputs_and_a_partial_strip() {
    let x = vec1(13, 5, 0.5, 1.5);
    let k = 0.7;
    let g = scaled_grad(&x, k).unwrap();
    assert_eq!(g.value, scaled(&x, k));
    check_analytic_scalar("∂/∂k", g.k, x.iter().map(|x| 1.0 / x + x).sum());
    check_analytic("∂/∂x", &g.x, &x.mapv(|x| -k / (x * x) + k));
    check_fd_scalar("∂/∂k", g.k, k, |k| scaled(&x, k));
    check_fd("∂/∂x", &g.x, &x, |x| scaled(x, k));
}

// A group output read both inside the group and after it: h feeds the next elementwise op and
// a sum whose value scales the rest (the sum ends the first group).
// f = Σ h·s with h = tanh(x·w), s = Σh:  ∂f/∂x = (s + Σh)·(1 − h²)·w = 2s·(1 − h²)·w
#[differentiable]
fn read_inside_and_after(x: &Array1<f64>, #[no_grad] w: &Array1<f64>) -> f64 {
    let h = tanh(&(x * w));
    let s = h.sum();
    (&h * s).sum()
}

#[test]
fn outputs_read_inside_and_after_the_group() {
    let x = vec1(9, 6, -1.0, 1.0);
    let w = vec1(9, 7, -1.0, 1.0);
    let g = read_inside_and_after_grad(&x, &w).unwrap();
    let h = (&x * &w).mapv(f64::tanh);
    let s = h.sum();
    let expected = Array1::from_shape_fn(9, |i| 2.0 * s * (1.0 - h[i] * h[i]) * w[i]);
    check_analytic("∂/∂x", &g.x, &expected);
    check_fd("∂/∂x", &g.x, &x, |x| read_inside_and_after(x, &w));
}

// A generic function: the fused loops and the nested op-by-op copy are generic over the float
// type too. f = Σ sigmoid(x·w)·x;  ∂f/∂x = s + x·w·s(1 − s) with s = sigmoid(x·w)
#[differentiable]
fn generic<F: tape::Float>(x: &Array1<F>, #[no_grad] w: &Array1<F>) -> F {
    (sigmoid(&(x * w)) * x).sum()
}

#[test]
fn generic_groups_in_f32_and_f64() {
    let x = vec1(11, 8, -1.0, 1.0);
    let w = vec1(11, 9, -1.0, 1.0);
    let g = generic_grad(&x, &w).unwrap();
    assert_eq!(g.value, generic(&x, &w));
    let expected = Array1::from_shape_fn(11, |i| {
        let s = 1.0 / (1.0 + (-x[i] * w[i]).exp());
        s + x[i] * w[i] * s * (1.0 - s)
    });
    check_analytic("∂/∂x f64", &g.x, &expected);
    check_fd("∂/∂x f64", &g.x, &x, |x| generic(x, &w));
    let (x32, w32) = (x.mapv(|v| v as f32), w.mapv(|v| v as f32));
    let g32 = generic_grad(&x32, &w32).unwrap();
    assert_eq!(g32.value, generic(&x32, &w32));
    assert_grad_close("∂/∂x f32 vs f64", &g32.x.mapv(f64::from), &expected, 1e-5);
}

// A parameter taken by value: the op-by-op fallback receives it moved.
// f = Σ tanh(x + b);  ∂f/∂b_j = Σ_i (1 − tanh²)
#[differentiable]
fn owned(x: Array2<f64>, b: Array2<f64>) -> f64 {
    (tanh(&(&x + &b)) * 2.0).sum()
}

#[test]
fn parameters_by_value_on_both_paths() {
    let x = mat2(3, 4, 10, -1.0, 1.0);
    // Same shape: fused. A column: op by op, with the parameters moved into the fallback.
    for b in [mat2(3, 4, 11, -1.0, 1.0), mat2(3, 1, 12, -1.0, 1.0)] {
        let g = owned_grad(x.clone(), b.clone()).unwrap();
        assert_eq!(g.value, owned(x.clone(), b.clone()));
        let t = (&x + &b).mapv(f64::tanh);
        let gx = t.mapv(|t| 2.0 * (1.0 - t * t));
        check_analytic("∂/∂x", &g.x, &gx);
        let gb = if b.ncols() == 1 {
            gx.sum_axis(ndarray::Axis(1)).insert_axis(ndarray::Axis(1))
        } else {
            gx.clone()
        };
        check_analytic("∂/∂b", &g.b, &gb);
    }
}

// A hidden layer: the cotangent of the group's output becomes the buffer of its first input's
// gradient when both cover the whole group. Here with the product first (reused), the bias
// first (not reused: a row), and the output read through a transpose (a strided cotangent,
// copied into the buffer).
// f = Σ h·v with h = tanh(x·w + b):  ∂f/∂w = xᵀ·(v·(1 − h²)),  ∂f/∂b = Σ_rows v·(1 − h²)
#[differentiable]
fn layer(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>, v: &Array2<f64>) -> f64 {
    let h = tanh(&(x.dot(w) + b));
    (h * v).sum()
}

#[differentiable]
fn layer_bias_first(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>, v: &Array2<f64>) -> f64 {
    let h = tanh(&(b + x.dot(w)));
    (h * v).sum()
}

#[differentiable]
fn layer_transposed(x: &Array2<f64>, w: &Array2<f64>, b: &Array1<f64>, v: &Array2<f64>) -> f64 {
    let h = tanh(&(x.dot(w) + b));
    h.t().dot(v).sum()
}

#[test]
fn output_cotangents_become_input_gradients() {
    // x [5×4], w [4×3], b [3], v [5×3]: 15 elements, a partial strip.
    let x = mat2(5, 4, 8, -1.0, 1.0);
    let w = mat2(4, 3, 9, -1.0, 1.0);
    let b = vec1(3, 10, -1.0, 1.0);
    let v = mat2(5, 3, 11, -1.0, 1.0);
    let h = (x.dot(&w) + &b).mapv(f64::tanh);
    for (name, g) in [
        ("product first", layer_grad(&x, &w, &b, &v).unwrap()),
        (
            "bias first",
            LayerGrad::from(layer_bias_first_grad(&x, &w, &b, &v).unwrap()),
        ),
    ] {
        let dz = &v * &h.mapv(|h| 1.0 - h * h);
        check_analytic(&format!("{name}: ∂/∂w"), &g.w, &x.t().dot(&dz));
        check_analytic(
            &format!("{name}: ∂/∂b"),
            &g.b,
            &dz.sum_axis(ndarray::Axis(0)),
        );
    }
    check_fd(
        "∂/∂w",
        &layer_grad(&x, &w, &b, &v).unwrap().w,
        &w,
        |w| layer(&x, w, &b, &v),
    );
    check_fd(
        "∂/∂b",
        &layer_bias_first_grad(&x, &w, &b, &v).unwrap().b,
        &b,
        |b| layer_bias_first(&x, &w, b, &v),
    );

    // Σ hᵀ·v: the cotangent of h arrives transposed (strided); the fused gradient must match
    // the recorded tape's, which the kernels compute op by op.
    let g = layer_transposed_grad(&x, &w, &b, &v).unwrap();
    let recorded = LayerTransposedTape::record(&x, &w, &b, &v)
        .unwrap()
        .backward()
        .unwrap();
    let as2 = |id: usize| -> Array2<f64> {
        recorded[&id]
            .as_array()
            .clone()
            .into_dimensionality()
            .unwrap()
    };
    assert_grad_close("∂/∂w fused vs op by op", &g.w, &as2(1), 1e-14);
    check_fd("∂/∂w", &g.w, &w, |w| layer_transposed(&x, w, &b, &v));
}

impl From<LayerBiasFirstGrad> for LayerGrad {
    fn from(g: LayerBiasFirstGrad) -> LayerGrad {
        LayerGrad {
            value: g.value,
            x: g.x,
            w: g.w,
            b: g.b,
            v: g.v,
        }
    }
}
