//! Test helpers shared by the op families: deterministic inputs, and a VJP driven through the
//! kernels next to the central-difference gradient of `Σ ḡ ⊙ f(x)`.

use crate::accumulate::Acc;
use crate::error::Result;
use crate::gradcheck::{DEFAULT_STEP, assert_grad_close, numeric_gradient};
use ndarray::ArrayD;

pub use crate::gradcheck::sample as det;

/// `Σ g ⊙ y`: the scalar whose gradient a VJP with cotangent `g` computes.
pub fn weighted(g: &ArrayD<f64>, y: &ArrayD<f64>) -> f64 {
    (g * y).sum()
}

pub type Fwd1 = fn(&ArrayD<f64>) -> Result<ArrayD<f64>>;
pub type Vjp1 = fn(ArrayD<f64>, &ArrayD<f64>, &ArrayD<f64>, Acc<'_, ArrayD<f64>>) -> Result<()>;

/// The VJP of a unary op at `x` with cotangent `g`.
pub fn vjp1(fwd: Fwd1, vjp: Vjp1, x: &ArrayD<f64>, g: &ArrayD<f64>) -> ArrayD<f64> {
    let y = fwd(x).expect("forward");
    let mut slot = None;
    vjp(g.clone(), x, &y, Acc::to(&mut slot)).expect("vjp");
    slot.expect("a contribution")
}

/// Checks a unary op's VJP against central differences at `x` (cotangent: deterministic).
#[track_caller]
pub fn check_fd1(what: &str, fwd: Fwd1, vjp: Vjp1, x: &ArrayD<f64>, tolerance: f64) {
    let g = det(fwd(x).expect("forward").shape(), 99, -1.0, 1.0);
    let analytic = vjp1(fwd, vjp, x, &g);
    let numeric = numeric_gradient(|x| weighted(&g, &fwd(x).expect("forward")), x, DEFAULT_STEP);
    assert_grad_close(what, &analytic, &numeric, tolerance);
}

pub type Fwd2 = fn(&ArrayD<f64>, &ArrayD<f64>) -> Result<ArrayD<f64>>;
pub type Vjp2 = fn(
    ArrayD<f64>,
    &ArrayD<f64>,
    &ArrayD<f64>,
    &ArrayD<f64>,
    Acc<'_, ArrayD<f64>>,
    Acc<'_, ArrayD<f64>>,
) -> Result<()>;

/// The VJP of a binary op at `(a, b)` with cotangent `g`: `(ā, b̄)`.
pub fn vjp2(
    fwd: Fwd2,
    vjp: Vjp2,
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    g: &ArrayD<f64>,
) -> (ArrayD<f64>, ArrayD<f64>) {
    let y = fwd(a, b).expect("forward");
    let (mut da, mut db) = (None, None);
    vjp(g.clone(), a, b, &y, Acc::to(&mut da), Acc::to(&mut db)).expect("vjp");
    (
        da.expect("a contribution to a"),
        db.expect("a contribution to b"),
    )
}

/// Checks a binary op's VJP against central differences in both operands.
#[track_caller]
pub fn check_fd2(
    what: &str,
    fwd: Fwd2,
    vjp: Vjp2,
    a: &ArrayD<f64>,
    b: &ArrayD<f64>,
    tolerance: f64,
) {
    let y = fwd(a, b).expect("forward");
    let g = det(y.shape(), 98, -1.0, 1.0);
    let (da, db) = vjp2(fwd, vjp, a, b, &g);
    let na = numeric_gradient(
        |a| weighted(&g, &fwd(a, b).expect("forward")),
        a,
        DEFAULT_STEP,
    );
    let nb = numeric_gradient(
        |b| weighted(&g, &fwd(a, b).expect("forward")),
        b,
        DEFAULT_STEP,
    );
    assert_grad_close(&format!("{what} (lhs)"), &da, &na, tolerance);
    assert_grad_close(&format!("{what} (rhs)"), &db, &nb, tolerance);
}

/// A VJP of a reduction to a scalar.
pub type ReduceVjp = fn(f64, &ArrayD<f64>, &f64, Acc<'_, ArrayD<f64>>) -> Result<()>;

/// A VJP of a loss of two operands.
pub type LossVjp = fn(
    f64,
    &ArrayD<f64>,
    &ArrayD<f64>,
    &f64,
    Acc<'_, ArrayD<f64>>,
    Acc<'_, ArrayD<f64>>,
) -> Result<()>;
