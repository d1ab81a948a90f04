//! Functions of more than 256 nodes: their `_vjp` records the tape and its pullback runs the
//! recorded tape's VJPs (`codegen::vjp_fn`), where a short function's `_vjp` has a generated
//! pullback. Called directly and from another differentiable function, against a hand-written
//! reverse loop and central differences. Over 300 nodes, `_grad` cuts a long elementwise run
//! into several fused groups: its gradients are checked the same way.

mod common;

use common::*;
use tape::Acc;
use tape::prelude::*;

const STEPS: usize = 80;

// y₀ = x;  y_{k+1} = tanh(y_k ⊙ a)·s + x;  f = Σ y_80.  Four nodes a step: over 300 in all,
// so `_grad` also cuts the elementwise run into fused groups of at most 96 (`codegen::fuse`).
#[differentiable]
fn long_chain(x: &Array1<f64>, a: &Array1<f64>, s: f64) -> f64 {
    let mut y = x * 1.0;
    for _ in 0..80 {
        y = tanh(&(&y * a)) * s + x;
    }
    y.sum()
}

// The same steps without the sum, returning the array (no `_grad`; its `_vjp` returns it).
#[differentiable]
fn long_map(x: &Array1<f64>, a: &Array1<f64>, s: f64) -> Array1<f64> {
    let mut y = x * 1.0;
    for _ in 0..80 {
        y = tanh(&(&y * a)) * s + x;
    }
    y
}

// g = v² + Σ long_map(x, a, s) with v = long_chain(x, a, s):
//   ∂g/∂θ = 2v·∂long_chain/∂θ + ∂Σ long_map/∂θ = (2v + 1)·∂long_chain/∂θ
#[differentiable]
fn calls_long(x: &Array1<f64>, a: &Array1<f64>, s: f64) -> f64 {
    let v = long_chain(x, a, s);
    v * v + long_map(x, a, s).sum()
}

/// The gradient of `long_chain` by a reverse loop written by hand: (value, ∂x, ∂a, ∂s).
fn by_hand(x: &Array1<f64>, a: &Array1<f64>, s: f64) -> (f64, Array1<f64>, Array1<f64>, f64) {
    let mut ys = vec![x.clone()];
    for k in 0..STEPS {
        let next = (&ys[k] * a).mapv(f64::tanh) * s + x;
        ys.push(next);
    }
    let value = ys[STEPS].sum();
    let mut g = Array1::ones(x.len());
    let (mut gx, mut ga, mut gs) = (Array1::zeros(x.len()), Array1::zeros(x.len()), 0.0);
    for k in (0..STEPS).rev() {
        let h = (&ys[k] * a).mapv(f64::tanh);
        gx += &g;
        gs += (&g * &h).sum();
        let gz = &g * s * h.mapv(|h| 1.0 - h * h);
        ga += &(&gz * &ys[k]);
        g = &gz * a;
    }
    gx += &g;
    (value, gx, ga, gs)
}

fn inputs() -> (Array1<f64>, Array1<f64>, f64) {
    (vec1(6, 40, -1.0, 1.0), vec1(6, 41, -0.9, 0.9), 0.8)
}

#[test]
fn the_recorded_pullback_matches_a_hand_written_reverse_loop() {
    let (x, a, s) = inputs();
    assert!(
        LongChainTape::<f64>::NODES.len() > 256,
        "the test needs a long tape"
    );
    let (value, pullback) = long_chain_vjp(&x, &a, s).unwrap();
    assert_eq!(value, long_chain(&x, &a, s));
    let (mut gx, mut ga, mut gs) = (None, None, None);
    pullback(2.0, Acc::to(&mut gx), Acc::to(&mut ga), Acc::to(&mut gs)).unwrap();
    let (want, hx, ha, hs) = by_hand(&x, &a, s);
    assert!((value - want).abs() <= 1e-12 * want.abs().max(1.0));
    check_analytic("2·∂/∂x", &gx.unwrap(), &(&hx * 2.0));
    check_analytic("2·∂/∂a", &ga.unwrap(), &(&ha * 2.0));
    check_analytic_scalar("2·∂/∂s", gs.unwrap(), hs * 2.0);
    // `_grad` keeps its generated sweep: the same gradients.
    let g = long_chain_grad(&x, &a, s).unwrap();
    check_analytic("_grad's ∂/∂x", &g.x, &hx);
    check_analytic("_grad's ∂/∂a", &g.a, &ha);
    check_analytic_scalar("_grad's ∂/∂s", g.s, hs);
    check_fd("_grad's ∂/∂x", &g.x, &x, |x| long_chain(x, &a, s));
    check_fd("_grad's ∂/∂a", &g.a, &a, |a| long_chain(&x, a, s));
}

// A reversed (strided) `a`: no fused loop can take it, so a fused group inside one of the
// blocks of `_grad`'s long body leaves the block for the op-by-op path
// (`fuse::block_or_unfused`), and `_grad` returns what that path computes.
#[test]
fn a_fused_group_in_a_block_falls_back_for_a_strided_input() {
    let (x, a, s) = inputs();
    let mut reversed = a.clone();
    reversed.invert_axis(ndarray::Axis(0));
    assert!(
        reversed.as_slice().is_none(),
        "the test needs a strided vector"
    );
    let contiguous = Array1::from_iter(reversed.iter().copied());
    let g = long_chain_grad(&x, &reversed, s).unwrap();
    let (value, hx, ha, hs) = by_hand(&x, &contiguous, s);
    assert!((g.value - value).abs() <= 1e-12 * value.abs().max(1.0));
    check_analytic("∂/∂x, strided a", &g.x, &hx);
    check_analytic("∂/∂a, strided a", &g.a, &ha);
    check_analytic_scalar("∂/∂s, strided a", g.s, hs);
    check_fd("∂/∂a of a strided a", &g.a, &reversed, |a| {
        long_chain(&x, a, s)
    });
}

#[test]
fn a_long_callee_inside_another_function() {
    let (x, a, s) = inputs();
    let g = calls_long_grad(&x, &a, s).unwrap();
    let v = long_chain(&x, &a, s);
    assert_eq!(g.value, calls_long(&x, &a, s));
    let (_, hx, ha, hs) = by_hand(&x, &a, s);
    let scale = 2.0 * v + 1.0;
    check_analytic("∂/∂x", &g.x, &(hx * scale));
    check_analytic("∂/∂a", &g.a, &(ha * scale));
    check_analytic_scalar("∂/∂s", g.s, hs * scale);
    check_fd("∂/∂x", &g.x, &x, |x| calls_long(x, &a, s));
    check_fd("∂/∂a", &g.a, &a, |a| calls_long(&x, a, s));
    check_fd_scalar("∂/∂s", g.s, s, |s| calls_long(&x, &a, s));
}

#[test]
fn a_long_callee_reports_its_errors() {
    // `a` of the wrong length: the callee's first product fails, at the callee's node, through
    // the recorded forward pass exactly as through `_grad`.
    let (x, _, s) = inputs();
    let a = vec1(5, 42, -0.9, 0.9);
    let direct = long_chain_grad(&x, &a, s).unwrap_err().to_string();
    let through_vjp = match long_chain_vjp(&x, &a, s) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a mismatched `a` must fail"),
    };
    assert_eq!(through_vjp, direct);
    assert!(calls_long_grad(&x, &a, s).is_err());
    // A seed of the wrong shape for an array output is an error, not a panic.
    let a = vec1(6, 41, -0.9, 0.9);
    let (_, pullback) = long_map_vjp(&x, &a, s).unwrap();
    let (mut gx, mut ga, mut gs) = (None, None, None);
    let err = pullback(
        Array1::ones(3),
        Acc::to(&mut gx),
        Acc::to(&mut ga),
        Acc::to(&mut gs),
    )
    .unwrap_err();
    assert!(matches!(err, TapeError::SeedShape { .. }), "{err}");
}

/// A scalar callee: its pullback, made where it is called, is handed to a later block.
#[differentiable]
fn square(u: f64) -> f64 {
    u * u
}

// A long `_grad` body is cut into blocks run as functions of their own
// (`codegen::blocks`). Every kind of code crosses a block boundary here: element reads with
// their buffer of contributions, calls and their pullbacks, a value read by forty later
// steps, a value moved into a kernel, an unreached node and a non-differentiable input.
//   f = Σ_{i<60} (x_{i mod 6}·c_{i mod 6} + s)² + Σ_{k<40} 0.01·Σ (x·s)²
//   ∂f/∂x_j = 20·c_j·(x_j c_j + s) + 0.8·s²·x_j,  ∂f/∂s = 20·Σ_j (x_j c_j + s) + 0.8·s·Σ x²
#[differentiable]
fn long_mixed(x: &Array1<f64>, #[no_grad] c: &Array1<f64>, s: f64) -> f64 {
    let mut total = 0.0;
    let _unreached = x.exp();
    for i in 0..60 {
        let u = x[i % 6] * c[i % 6] + s;
        total += square(u);
    }
    let v = x * s;
    for _ in 0..40 {
        total += (&v * &v).sum() * 0.01;
    }
    total
}

#[test]
fn a_body_cut_into_blocks_keeps_every_gradient() {
    let (x, _, s) = inputs();
    let c = vec1(6, 43, -1.0, 1.0);
    assert!(
        LongMixedTape::<f64>::NODES.len() > 400,
        "the test needs a body long enough to be cut into blocks"
    );
    let g = long_mixed_grad(&x, &c, s).unwrap();
    assert_eq!(g.value, long_mixed(&x, &c, s));
    let u = &x * &c + s;
    let squares = x.mapv(|x| x * x).sum();
    check_analytic("∂/∂x", &g.x, &(&c * &u * 20.0 + &x * (0.8 * s * s)));
    check_analytic_scalar("∂/∂s", g.s, 20.0 * u.sum() + 0.8 * s * squares);
    check_fd("∂/∂x", &g.x, &x, |x| long_mixed(x, &c, s));
    check_fd_scalar("∂/∂s", g.s, s, |s| long_mixed(&x, &c, s));
    // An error inside a block names its node, as anywhere else.
    let short = vec1(5, 44, -1.0, 1.0);
    let err = long_mixed_grad(&x, &short, s).unwrap_err().to_string();
    assert!(err.contains("index"), "{err}");
}

// Cut into blocks too, with what else crosses a block boundary: values made inside an arm
// of an `if` (held as `Option`s), a no-grad integer input, and an auxiliary output.
//   f = Σ_{i<90} (x_{i mod 6}·c_{i mod 6} + s)² + (mode > 0 ? 2·s·Σx : Σx)
//   ∂f/∂x_j = 30·c_j·(x_j c_j + s) + (2s or 1),  ∂f/∂s = 30·Σ_j (x_j c_j + s) + (2·Σx or 0)
#[differentiable]
fn long_branchy(x: &Array1<f64>, #[no_grad] c: &Array1<f64>, s: f64, mode: i32) -> (f64, usize) {
    let mut total = 0.0;
    for i in 0..90 {
        let u = x[i % 6] * c[i % 6] + s;
        total += u * u;
    }
    let extra = if mode > 0 {
        (x * s).sum() * 2.0
    } else {
        x.sum()
    };
    (total + extra, x.len())
}

#[test]
fn blocks_carry_branch_values_and_the_auxiliary_output() {
    let (x, _, s) = inputs();
    let c = vec1(6, 45, -1.0, 1.0);
    assert!(
        LongBranchyTape::<f64>::NODES.len() > 500,
        "the test needs a long body"
    );
    let u = &x * &c + s;
    for mode in [1, -1] {
        let g = long_branchy_grad(&x, &c, s, mode).unwrap();
        assert_eq!((g.value, g.aux), long_branchy(&x, &c, s, mode));
        let (dx, ds) = if mode > 0 {
            (2.0 * s, 2.0 * x.sum())
        } else {
            (1.0, 0.0)
        };
        check_analytic("∂/∂x", &g.x, &(&c * &u * 30.0 + dx));
        check_analytic_scalar("∂/∂s", g.s, 30.0 * u.sum() + ds);
        check_fd("∂/∂x", &g.x, &x, |x| long_branchy(x, &c, s, mode).0);
        check_fd_scalar("∂/∂s", g.s, s, |s| long_branchy(&x, &c, s, mode).0);
    }
}
