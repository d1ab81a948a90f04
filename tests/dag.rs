//! Graph shapes: values used several times (contributions summed), nodes that never reach the
//! output (no VJP runs, so nothing they hold leaks into a gradient), outputs that are
//! parameters, unused and non-differentiable parameters.

mod common;

use common::*;
use tape::prelude::*;

// f = Σ (x + x) = 2Σx:  ∂f/∂x = 2
#[differentiable]
fn twice(x: &Array1<f64>) -> f64 {
    (x + x).sum()
}

// f = x·x (one op, the same operand twice):  ∂f/∂x = 2x
#[differentiable]
fn square(x: f64) -> f64 {
    x * x
}

#[test]
fn a_value_used_twice_by_one_op() {
    let x = vec1(4, 1, -1.0, 1.0);
    let g = twice_grad(&x).unwrap();
    check_analytic("x + x", &g.x, &Array1::from_elem(4, 2.0));
    check_fd("x + x", &g.x, &x, twice);
    let g = square_grad(-1.5).unwrap();
    check_analytic_scalar("x * x", g.x, -3.0);
    assert_eq!(g.value, square(-1.5));
}

// h = tanh(x) feeds three consumers: f = Σ h² + Σ exp(h) + Σ h·x
// ∂f/∂x = (2h + exp(h) + x)·(1 − h²) + h
#[differentiable]
fn three_consumers(x: &Array1<f64>) -> f64 {
    let h = tanh(x);
    let a = (&h * &h).sum();
    let b = h.exp().sum();
    let c = (&h * x).sum();
    a + b + c
}

#[test]
fn one_value_feeding_three_consumers() {
    let x = vec1(5, 2, -1.0, 1.0);
    let g = three_consumers_grad(&x).unwrap();
    assert_eq!(g.value, three_consumers(&x));
    let expected = x.mapv(|x| {
        let h = x.tanh();
        (2.0 * h + h.exp() + x) * (1.0 - h * h) + h
    });
    check_analytic("three consumers", &g.x, &expected);
    check_fd("three consumers", &g.x, &x, three_consumers);
}

// `r = 1/x` never reaches the output: at x = 0 it is infinite, and since its VJP never runs
// the gradient stays finite.  f = Σ x²:  ∂f/∂x = 2x
#[differentiable]
fn unreached(x: &Array1<f64>) -> f64 {
    let r = 1.0 / x;
    let _unused = r.exp().sum();
    (x * x).sum()
}

#[test]
fn unreached_nodes_cost_nothing_and_leak_nothing() {
    let x = array![0.0, 1.0, -2.0];
    let g = unreached_grad(&x).unwrap();
    assert_eq!(g.value, unreached(&x));
    check_analytic("unreached", &g.x, &(2.0 * &x));
    assert!(g.x.iter().all(|v| v.is_finite()));
}

// The output is a parameter: ∂f/∂x = 1, and y is unused: zeros of its shape.
#[differentiable]
fn identity(x: f64, _y: &Array2<f64>) -> f64 {
    x
}

#[test]
fn output_that_is_a_parameter_and_an_unused_parameter() {
    let y = mat2(2, 3, 3, -1.0, 1.0);
    let g = identity_grad(2.5, &y).unwrap();
    assert_eq!(g.value, 2.5);
    assert_eq!(g.x, 1.0);
    assert_eq!(g._y, Array2::zeros((2, 3)));
    assert_eq!(identity(2.5, &y), 2.5);
}

// A constant output: every gradient is zero.
#[differentiable]
fn constant(_x: &Array1<f64>) -> f64 {
    2.5
}

#[test]
fn constant_output() {
    let g = constant_grad(&array![1.0, 2.0]).unwrap();
    assert_eq!(g.value, 2.5);
    assert_eq!(g._x, array![0.0, 0.0]);
    assert_eq!(constant(&array![1.0]), 2.5);
}

// #[no_grad] inputs and integer inputs get no field; the integer is usable as a constant.
// f = Σ (w·x)^n / n:  ∂f/∂w = Σᵢ (w·xᵢ)^(n−1)·xᵢ
#[differentiable]
fn power_sum(w: &Array1<f64>, #[no_grad] x: &Array2<f64>, n: i32) -> f64 {
    let z = x.dot(w);
    let scale = 1.0 / (n as f64);
    (z.powi(n) * scale).sum()
}

#[test]
fn non_differentiable_inputs() {
    let (w, x) = (vec1(3, 4, -1.0, 1.0), mat2(4, 3, 5, -1.0, 1.0));
    let g = power_sum_grad(&w, &x, 3).unwrap();
    // PowerSumGrad has `value` and `w` only: the test would not compile with `g.x` or `g.n`.
    let PowerSumGrad { value, w: gw } = g;
    assert_eq!(value, power_sum(&w, &x, 3));
    let z = x.dot(&w);
    check_analytic("power_sum", &gw, &x.t().dot(&z.mapv(|v| v * v)));
    check_fd("power_sum", &gw, &w, |w| power_sum(w, &x, 3));
}

// Shadowing, nested blocks and an early `return` as the last statement.
// f = Σ exp(2x) + Σ 2x:  ∂f/∂x = 2·exp(2x) + 2
#[differentiable]
#[allow(clippy::needless_return)] // `return` as the last statement is part of the test
fn shadowing(x: &Array1<f64>) -> f64 {
    let y = x * 2.0;
    let y = {
        let t = y.exp();
        t + &y
    };
    return y.sum();
}

#[test]
fn shadowing_and_blocks() {
    let x = vec1(4, 6, -1.0, 1.0);
    let g = shadowing_grad(&x).unwrap();
    check_analytic(
        "shadowing",
        &g.x,
        &(x.mapv(|v| 2.0 * (2.0 * v).exp()) + 2.0),
    );
    check_fd("shadowing", &g.x, &x, shadowing);
}

// A constant from a path, a parenthesised literal and a negative literal.
// f = PI·x − (−0.5)·x²:  ∂f/∂x = PI + x
const SCALE: f64 = std::f64::consts::PI;

#[differentiable]
fn constants(x: f64) -> f64 {
    SCALE * x - (-0.5) * x.powi(2)
}

#[test]
fn path_constants() {
    let g = constants_grad(1.25).unwrap();
    check_analytic_scalar("constants", g.x, SCALE + 1.25);
    check_fd_scalar("constants", g.x, 1.25, constants);
}

// Shapes of differentiable values are constants: f = Σx / len(x) + Σ (Σ₀ x)/rows
// ∂f/∂x = 1/len + 1/rows
#[differentiable]
fn shape_queries(x: &Array2<f64>) -> f64 {
    let n = x.len() as f64;
    x.sum() / n + (x.sum_axis(Axis(0)) / (x.nrows() as f64)).sum()
}

#[test]
fn shapes_are_constants() {
    let x = mat2(3, 4, 7, -1.0, 1.0);
    let g = shape_queries_grad(&x).unwrap();
    assert_eq!(g.value, shape_queries(&x));
    check_analytic(
        "shape queries",
        &g.x,
        &Array2::from_elem((3, 4), 1.0 / 12.0 + 1.0 / 3.0),
    );
}

// One vector read whole and element by element: the whole read's contribution arrives first
// in the sweep, and the element reads then add into it in place.
// f = Σx · x₀ + e^{x₂};  ∂f/∂xⱼ = x₀ + [j = 0]·Σx + [j = 2]·e^{x₂}
#[differentiable]
fn whole_and_elements(x: &Array1<f64>) -> f64 {
    x.sum() * x[0] + x[2].exp()
}

#[test]
fn whole_reads_and_element_reads_accumulate() {
    let x = vec1(4, 31, -1.0, 1.0);
    let g = whole_and_elements_grad(&x).unwrap();
    assert_eq!(g.value, whole_and_elements(&x));
    let mut expected = Array1::from_elem(4, x[0]);
    expected[0] += x.sum();
    expected[2] += x[2].exp();
    check_analytic("whole and elements", &g.x, &expected);
    check_fd("whole and elements", &g.x, &x, whole_and_elements);
}

// Scalar parameters only: every node takes the scalar path (plain float code), including a
// value used three times and an operand used twice by one node.
// f = a·a·b + sin(a)/b − max(a, b);  with a > b:
// ∂f/∂a = 2ab + cos(a)/b − 1,  ∂f/∂b = a² − sin(a)/b²
#[differentiable]
fn scalars_only(a: f64, b: f64) -> f64 {
    a * a * b + a.sin() / b - maximum(&a, &b)
}

#[test]
fn scalar_path_gradients() {
    let (a, b) = (0.7, 0.4);
    let g = scalars_only_grad(a, b).unwrap();
    assert_eq!(g.value, scalars_only(a, b));
    check_analytic_scalar("∂/∂a", g.a, 2.0 * a * b + a.cos() / b - 1.0);
    check_analytic_scalar("∂/∂b", g.b, a * a - a.sin() / (b * b));
    check_fd_scalar("∂/∂a", g.a, a, |a| scalars_only(a, b));
    check_fd_scalar("∂/∂b", g.b, b, |b| scalars_only(a, b));
}

fn shifted(i: usize) -> usize {
    i + 1
}

// Repeated reads of one element: `_grad` merges equal scalar nodes (`x[i]` three times per
// step, the same constant `i` each time) and sums their cotangents once. Index code with a
// call (`x[shifted(i)]`) is never merged, and `x[1]` is another node than `x[i]` even where
// `i` is 1; all give the same gradient.
// f = Σ_i x_i·x_i·x_i + x_{i+1} + x_1  for i in 0..3:
//   ∂f/∂x_j = 3x_j² [j < 3] + [1 ≤ j ≤ 3] + 3·[j = 1]
#[differentiable]
fn repeated_reads(x: &Array1<f64>) -> f64 {
    let mut total = 0.0;
    for i in 0..3 {
        total += x[i] * x[i] * x[i] + x[shifted(i)] + x[1];
    }
    total
}

#[test]
fn repeated_element_reads_are_merged() {
    let x = vec1(4, 30, -1.0, 1.0);
    let g = repeated_reads_grad(&x).unwrap();
    assert_eq!(g.value, repeated_reads(&x));
    let expected = Array1::from_shape_fn(4, |j| {
        let cube = if j < 3 { 3.0 * x[j] * x[j] } else { 0.0 };
        let next = if (1..=3).contains(&j) { 1.0 } else { 0.0 };
        let one = if j == 1 { 3.0 } else { 0.0 };
        cube + next + one
    });
    check_analytic("∂/∂x", &g.x, &expected);
    check_fd("∂/∂x", &g.x, &x, repeated_reads);
    let recorded = RepeatedReadsTape::record(&x).unwrap();
    assert_matches_recorded(&g.x, &recorded);
}

/// `∂/∂x` (node 0) from the recorded tape's `backward`, against `_grad`'s.
fn assert_matches_recorded(grad: &Array1<f64>, recorded: &impl Tape<Elem = f64>) {
    let all = recorded.backward().unwrap();
    let from_tape: Array1<f64> = all[&0].as_array().clone().into_dimensionality().unwrap();
    tape::gradcheck::assert_grad_close("∂/∂x vs the recorded tape", grad, &from_tape, 1e-15);
}

// Scalar VJPs run inside the forward pass, each right after the values it reads and after
// every block that adds into its cotangent (`codegen::eager`). Here each term `t` is read by
// the running sum, by its own product `prev · t` and by the next step's product, so its block
// must wait for the next step; `s` is read by every term, `x[i]` by two neighbouring terms,
// `powi`'s exponent is a config local, and `wasted` (infinite) never reaches the output.
// f = Σ_k t_k + t_{k−1}·t_k,  t_k = d_k² + c·x_k³,  d_k = s·x_k − x_{k+1},  t_{−1} = 0:
//   ∂f/∂t_k = 1 + t_{k−1} + t_{k+1}   (t_5 = 0)
//   ∂t_k/∂x_k = 2d_k·s + 3c·x_k²,  ∂t_k/∂x_{k+1} = −2d_k,  ∂t_k/∂s = 2d_k·x_k
#[differentiable]
fn early_terms(x: &Array1<f64>, s: f64, #[no_grad] c: f64) -> f64 {
    let mut total = 0.0;
    let mut prev = 0.0;
    for i in 0..5 {
        let d = s * x[i] - x[i + 1];
        let t = d * d + c * x[i].powi(3);
        total += t + prev * t;
        prev = t;
    }
    let _wasted = x[0] / (x[1] * 0.0);
    total
}

#[test]
fn scalar_blocks_run_inside_the_forward_pass() {
    let x = vec1(6, 31, -1.0, 1.0);
    let (s, c) = (0.7, -0.4);
    let g = early_terms_grad(&x, s, c).unwrap();
    assert_eq!(g.value, early_terms(&x, s, c));
    let d: Vec<f64> = (0..5).map(|k| s * x[k] - x[k + 1]).collect();
    let t: Vec<f64> = (0..5).map(|k| d[k] * d[k] + c * x[k].powi(3)).collect();
    let (mut gx, mut gs) = (Array1::zeros(6), 0.0);
    for k in 0..5 {
        let before = if k > 0 { t[k - 1] } else { 0.0 };
        let after = t.get(k + 1).copied().unwrap_or(0.0);
        let dt = 1.0 + before + after;
        gx[k] += dt * (2.0 * d[k] * s + 3.0 * c * x[k] * x[k]);
        gx[k + 1] -= dt * 2.0 * d[k];
        gs += dt * 2.0 * d[k] * x[k];
    }
    check_analytic("∂/∂x", &g.x, &gx);
    check_analytic_scalar("∂/∂s", g.s, gs);
    check_fd("∂/∂x", &g.x, &x, |x| early_terms(x, s, c));
    check_fd_scalar("∂/∂s", g.s, s, |s| early_terms(&x, s, c));
    assert_matches_recorded(&g.x, &EarlyTermsTape::record(&x, s, c).unwrap());
}

// `early_terms` reads `x` only at indices known when the macro ran (0 to 5), so `_grad`
// reads them from a fixed-size array with no bounds checks. A vector that is too short, or
// not contiguous, takes the op-by-op path instead: the same error, at the read that fails,
// and the same gradient.
#[test]
fn reads_at_known_indices_fall_back_for_short_or_strided_vectors() {
    let (s, c) = (0.7, -0.4);
    let short = vec1(5, 32, -1.0, 1.0);
    let err = early_terms_grad(&short, s, c).unwrap_err().to_string();
    let op_by_op = match early_terms_vjp(&short, s, c) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("x[5] of a 5-vector must fail"),
    };
    assert_eq!(err, op_by_op);
    assert!(
        err.contains("index 5 is out of bounds for length 5"),
        "{err}"
    );

    let mut reversed = vec1(6, 33, -1.0, 1.0);
    reversed.invert_axis(ndarray::Axis(0));
    assert!(
        reversed.as_slice().is_none(),
        "the test needs a strided vector"
    );
    let contiguous = Array1::from_iter(reversed.iter().copied());
    assert!(contiguous.as_slice().is_some());
    let (g, want) = (
        early_terms_grad(&reversed, s, c).unwrap(),
        early_terms_grad(&contiguous, s, c).unwrap(),
    );
    // The op-by-op path adds the contributions in another order: equal to rounding.
    assert_eq!(g.value, want.value);
    check_analytic("∂/∂x, strided vs contiguous", &g.x, &want.x);
    check_analytic_scalar("∂/∂s, strided vs contiguous", g.s, want.s);
    check_fd("∂/∂x of a strided x", &g.x, &reversed, |x| {
        early_terms(x, s, c)
    });

    // A longer vector: the elements past the last read get zero gradient.
    let long = vec1(9, 34, -1.0, 1.0);
    let g = early_terms_grad(&long, s, c).unwrap();
    assert_eq!(g.x.len(), 9);
    assert!(g.x.iter().skip(6).all(|&d| d == 0.0), "{}", g.x);
    check_fd("∂/∂x of a longer x", &g.x, &long, |x| {
        early_terms(x, s, c)
    });
}
