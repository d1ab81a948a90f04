//! Helpers shared by the integration tests: deterministic inputs and gradient checks that
//! print the relative error when they fail.

#![allow(dead_code)]

use ndarray::{Array, Array1, Array2, Dimension};
use tape::gradcheck::{
    DEFAULT_STEP, assert_grad_close, assert_scalar_close, numeric_derivative, numeric_gradient,
};

pub use tape::gradcheck::sample as det;

/// A deterministic vector in `[lo, hi)`.
pub fn vec1(n: usize, seed: u64, lo: f64, hi: f64) -> Array1<f64> {
    det(&[n], seed, lo, hi).into_dimensionality().expect("1-d")
}

/// A deterministic matrix in `[lo, hi)`.
pub fn mat2(r: usize, c: usize, seed: u64, lo: f64, hi: f64) -> Array2<f64> {
    det(&[r, c], seed, lo, hi)
        .into_dimensionality()
        .expect("2-d")
}

/// Tolerance against hand-derived gradients: both are exact formulas, so they agree to a few
/// ulps of the largest intermediate.
pub const ANALYTIC: f64 = 1e-12;

/// Tolerance against central differences at the default step.
pub const FD: f64 = 1e-7;

/// Checks `grad` against the central-difference gradient of `f` at `x`.
#[track_caller]
pub fn check_fd<D: Dimension>(
    what: &str,
    grad: &Array<f64, D>,
    x: &Array<f64, D>,
    f: impl FnMut(&Array<f64, D>) -> f64,
) {
    let numeric = numeric_gradient(f, x, DEFAULT_STEP);
    assert_grad_close(
        &format!("{what} vs central differences"),
        grad,
        &numeric,
        FD,
    );
}

/// Checks `grad` against a hand-derived gradient.
#[track_caller]
pub fn check_analytic<D: Dimension>(what: &str, grad: &Array<f64, D>, expected: &Array<f64, D>) {
    assert_grad_close(&format!("{what} vs analytic"), grad, expected, ANALYTIC);
}

/// Checks a scalar derivative against central differences.
#[track_caller]
pub fn check_fd_scalar(what: &str, grad: f64, x: f64, f: impl FnMut(f64) -> f64) {
    let numeric = numeric_derivative(f, x, DEFAULT_STEP);
    assert_scalar_close(&format!("{what} vs central differences"), grad, numeric, FD);
}

/// Checks a scalar derivative against a hand-derived one.
#[track_caller]
pub fn check_analytic_scalar(what: &str, grad: f64, expected: f64) {
    assert_scalar_close(&format!("{what} vs analytic"), grad, expected, ANALYTIC);
}
