//! Buffer reuse in `_grad`: kernels that take an intermediate array nothing reads afterwards
//! and write into its buffer (in-place elementwise ops, a sum's cotangent spread in the summed
//! value's buffer, cross-entropy's gradient in the logits). Each case is checked against a
//! hand-derived gradient, central differences, and the recorded tape, which computes op by op
//! with fresh buffers; and the value against the plain function, bit for bit.

mod common;

use common::*;
use ndarray::{Array1, Array2, Axis};
use tape::gradcheck::assert_grad_close;
use tape::prelude::*;

fn recorded2(g: &std::collections::HashMap<usize, tape::AnyTensor<f64>>, id: usize) -> Array2<f64> {
    g[&id].as_array().clone().into_dimensionality().unwrap()
}

fn recorded1(g: &std::collections::HashMap<usize, tape::AnyTensor<f64>>, id: usize) -> Array1<f64> {
    g[&id].as_array().clone().into_dimensionality().unwrap()
}

// `tanh` runs in the product's buffer, and its VJP in its own output's, on the sum's scalar
// cotangent. f = Σ tanh(x·w):  ∂f/∂w = xᵀ·(1 − tanh²)
#[differentiable]
fn summed_tanh(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> f64 {
    tanh(&x.dot(w)).sum()
}

// The same through `mean` and a method spelling, and an op whose VJP reads its operand
// (`powi`), so the operand stays. f = mean(exp(x·w)) + Σ (x·w)³
#[differentiable]
fn averaged(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> f64 {
    let z = x.dot(w);
    let e = z.exp();
    e.mean().unwrap() + z.powi(3).sum()
}

#[test]
fn elementwise_ops_and_summed_values_reuse_buffers() {
    let x = mat2(5, 4, 1, -1.0, 1.0);
    let w = mat2(4, 3, 2, -1.0, 1.0);
    let g = summed_tanh_grad(&w, &x).unwrap();
    assert_eq!(g.value, summed_tanh(&w, &x));
    let t = x.dot(&w).mapv(f64::tanh);
    check_analytic("∂/∂w", &g.w, &x.t().dot(&t.mapv(|t| 1.0 - t * t)));
    check_fd("∂/∂w", &g.w, &w, |w| summed_tanh(w, &x));
    let recorded = SummedTanhTape::record(&w, &x).unwrap().backward().unwrap();
    assert_grad_close("∂/∂w vs op by op", &g.w, &recorded2(&recorded, 0), 1e-15);

    let g = averaged_grad(&w, &x).unwrap();
    assert_eq!(g.value, averaged(&w, &x));
    let z = x.dot(&w);
    let dz = z.mapv(|z| z.exp() / 15.0 + 3.0 * z * z);
    check_analytic("∂/∂w", &g.w, &x.t().dot(&dz));
    check_fd("∂/∂w", &g.w, &w, |w| averaged(w, &x));
    let recorded = AveragedTape::record(&w, &x).unwrap().backward().unwrap();
    assert_grad_close("∂/∂w vs op by op", &g.w, &recorded2(&recorded, 0), 1e-15);
}

// A bias added in the product's buffer (the left operand moved), a bias plus a product in the
// product's (the right operand moved), and a vector moved into a sum larger than itself
// (computed in a new buffer; its gradient is still summed back to its own shape). Each
// elementwise op stands alone between products, so none is fused.
// f = Σ s·q,  s = c·k + y·n,  y = b + z·m,  z = x·w + b.  With G = ∂f/∂s = 1·qᵀ:
//   ∂f/∂y = G·nᵀ,  ∂f/∂z = ∂f/∂y·mᵀ,  ∂f/∂w = xᵀ·∂f/∂z,
//   ∂f/∂b = Σ_rows ∂f/∂y + Σ_rows ∂f/∂z,  ∂f/∂c = k·Σ_rows G
#[differentiable]
#[allow(clippy::too_many_arguments)]
fn biased(
    w: &Array2<f64>,
    b: &Array1<f64>,
    c: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] m: &Array2<f64>,
    #[no_grad] k: &Array2<f64>,
    #[no_grad] n: &Array2<f64>,
    #[no_grad] q: &Array2<f64>,
) -> f64 {
    let z = x.dot(w) + b;
    let y = b + z.dot(m);
    let s = c.dot(k) + y.dot(n);
    s.dot(q).sum()
}

#[test]
fn binary_ops_reuse_either_operand_or_fall_back() {
    let x = mat2(5, 4, 3, -1.0, 1.0);
    let w = mat2(4, 3, 4, -1.0, 1.0);
    let b = vec1(3, 5, -1.0, 1.0);
    let c = vec1(4, 6, -1.0, 1.0);
    let m = mat2(3, 3, 7, -1.0, 1.0);
    let k = mat2(4, 3, 13, -1.0, 1.0);
    let n = mat2(3, 3, 15, -1.0, 1.0);
    let q = mat2(3, 2, 14, -1.0, 1.0);
    let g = biased_grad(&w, &b, &c, &x, &m, &k, &n, &q).unwrap();
    assert_eq!(g.value, biased(&w, &b, &c, &x, &m, &k, &n, &q));
    let gs = Array2::<f64>::ones((5, 2)).dot(&q.t());
    let gy = gs.dot(&n.t());
    let gz = gy.dot(&m.t());
    check_analytic("∂/∂w", &g.w, &x.t().dot(&gz));
    check_analytic("∂/∂b", &g.b, &(gy.sum_axis(Axis(0)) + gz.sum_axis(Axis(0))));
    check_analytic("∂/∂c", &g.c, &k.dot(&gs.sum_axis(Axis(0))));
    check_fd("∂/∂b", &g.b, &b, |b| {
        biased(&w, b, &c, &x, &m, &k, &n, &q)
    });
    check_fd("∂/∂c", &g.c, &c, |c| {
        biased(&w, &b, c, &x, &m, &k, &n, &q)
    });
    let recorded = BiasedTape::record(&w, &b, &c, &x, &m, &k, &n, &q)
        .unwrap()
        .backward()
        .unwrap();
    assert_grad_close("∂/∂w vs op by op", &g.w, &recorded2(&recorded, 0), 1e-15);
    assert_grad_close("∂/∂b vs op by op", &g.b, &recorded1(&recorded, 1), 1e-15);
    assert_grad_close("∂/∂c vs op by op", &g.c, &recorded1(&recorded, 2), 1e-15);
}

// Cross-entropy's gradient written into the logits' buffer, with the target differentiable
// too (its gradient reads the logits first), and a value read twice (`h * h`: kept).
// f = CE(h·h·w2 + b, t) with h = tanh(x·w1):
#[differentiable]
fn classifier(
    w1: &Array2<f64>,
    w2: &Array2<f64>,
    b: &Array1<f64>,
    t: &Array2<f64>,
    #[no_grad] x: &Array2<f64>,
) -> f64 {
    let h = tanh(&x.dot(w1));
    let z = (&h * &h).dot(w2) + b;
    cross_entropy(&z, t)
}

#[test]
fn cross_entropy_reuses_the_logits() {
    let x = mat2(6, 4, 8, -1.0, 1.0);
    let w1 = mat2(4, 5, 9, -1.0, 1.0);
    let w2 = mat2(5, 3, 10, -1.0, 1.0);
    let b = vec1(3, 11, -1.0, 1.0);
    let t = mat2(6, 3, 12, 0.0, 1.0);
    let g = classifier_grad(&w1, &w2, &b, &t, &x).unwrap();
    assert_eq!(g.value, classifier(&w1, &w2, &b, &t, &x));
    // ∂f/∂t = −log_softmax(z)/B; ∂f/∂b = Σ_rows (softmax(z)·Σt − t)/B
    let h = x.dot(&w1).mapv(f64::tanh);
    let z = (&h * &h).dot(&w2) + &b;
    let rows = z.nrows() as f64;
    let mut dz = z.clone();
    let mut dt = z.clone();
    for ((mut dzr, mut dtr), tr) in dz.rows_mut().into_iter().zip(dt.rows_mut()).zip(t.rows()) {
        let m = dzr.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let lse = m + dzr.fold(0.0, |s, &v| s + (v - m).exp()).ln();
        let mass = tr.sum();
        dtr.mapv_inplace(|z| -(z - lse) / rows);
        for (d, &ti) in dzr.iter_mut().zip(tr) {
            *d = ((*d - lse).exp() * mass - ti) / rows;
        }
    }
    check_analytic("∂/∂t", &g.t, &dt);
    check_analytic("∂/∂b", &g.b, &dz.sum_axis(Axis(0)));
    check_fd("∂/∂w1", &g.w1, &w1, |w1| {
        classifier(w1, &w2, &b, &t, &x)
    });
    check_fd("∂/∂t", &g.t, &t, |t| classifier(&w1, &w2, &b, t, &x));
    let recorded = ClassifierTape::record(&w1, &w2, &b, &t, &x)
        .unwrap()
        .backward()
        .unwrap();
    assert_grad_close("∂/∂w1 vs op by op", &g.w1, &recorded2(&recorded, 0), 1e-14);
    assert_grad_close("∂/∂t vs op by op", &g.t, &recorded2(&recorded, 3), 1e-15);
}

// A fused group's first output written into its input's buffer: the product's (it covers the
// group), or not, when the moved input is a row broadcast over the batch (the output then
// gets a buffer of its own). f = Σ tanh(x·w + b)·v + Σ tanh(c·k + x)·v
//   ∂f/∂w = xᵀ·(v ⊙ (1 − h²)),  ∂f/∂c = k·Σ_rows (v ⊙ (1 − u²))
#[differentiable]
fn recycled(
    w: &Array2<f64>,
    b: &Array1<f64>,
    c: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] k: &Array2<f64>,
    #[no_grad] v: &Array2<f64>,
) -> f64 {
    let h = tanh(&(x.dot(w) + b));
    let first = (h * v).sum();
    let u = tanh(&(c.dot(k) + x));
    first + (u * v).sum()
}

#[test]
fn fused_groups_write_into_an_input_they_read_last() {
    let x = mat2(5, 3, 16, -1.0, 1.0);
    let w = mat2(3, 3, 17, -1.0, 1.0);
    let b = vec1(3, 18, -1.0, 1.0);
    let c = vec1(4, 19, -1.0, 1.0);
    let k = mat2(4, 3, 20, -1.0, 1.0);
    let v = mat2(5, 3, 21, -1.0, 1.0);
    let g = recycled_grad(&w, &b, &c, &x, &k, &v).unwrap();
    assert_eq!(g.value, recycled(&w, &b, &c, &x, &k, &v));
    let h = (x.dot(&w) + &b).mapv(f64::tanh);
    let u = (c.dot(&k) + &x).mapv(f64::tanh);
    check_analytic("∂/∂w", &g.w, &x.t().dot(&(&v * &h.mapv(|h| 1.0 - h * h))));
    let du = &v * &u.mapv(|u| 1.0 - u * u);
    check_analytic("∂/∂c", &g.c, &k.dot(&du.sum_axis(Axis(0))));
    check_fd("∂/∂c", &g.c, &c, |c| recycled(&w, &b, c, &x, &k, &v));
    let recorded = RecycledTape::record(&w, &b, &c, &x, &k, &v)
        .unwrap()
        .backward()
        .unwrap();
    assert_grad_close("∂/∂w vs op by op", &g.w, &recorded2(&recorded, 0), 1e-15);
    assert_grad_close("∂/∂c vs op by op", &g.c, &recorded1(&recorded, 2), 1e-15);
}

// A product large enough for the workspace: its cotangent's buffer is kept after the first
// gradient and the next gradient's product is computed into it (stale values and all).
#[test]
fn a_products_buffer_is_kept_for_the_next_gradient() {
    let x = mat2(160, 4, 11, -1.0, 1.0);
    let w = mat2(4, 128, 12, -1.0, 1.0);
    tape::workspace::clear();
    let first = summed_tanh_grad(&w, &x).unwrap();
    assert_eq!(tape::workspace::held_bytes(), 160 * 128 * 8);
    let second = summed_tanh_grad(&w, &x).unwrap();
    assert_eq!(tape::workspace::held_bytes(), 160 * 128 * 8);
    assert_eq!(first, second);
    assert_eq!(second.value, summed_tanh(&w, &x));
    let t = x.dot(&w).mapv(f64::tanh);
    check_analytic("∂/∂w", &second.w, &x.t().dot(&t.mapv(|t| 1.0 - t * t)));
    check_fd("∂/∂w", &second.w, &w, |w| summed_tanh(w, &x));
    tape::workspace::clear();
    assert_eq!(tape::workspace::held_bytes(), 0);
}
