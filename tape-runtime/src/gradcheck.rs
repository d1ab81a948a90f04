//! Central-difference gradient checking in `f64`.
//!
//! `(f(x + h·eᵢ) − f(x − h·eᵢ)) / 2h` for every element `i`, compared with an analytic
//! gradient by the largest relative error `|a − n| / max(|a|, |n|, 1)` (absolute for
//! gradients below 1, so that entries near zero do not blow the ratio up).
//!
//! ```
//! use tape_runtime::gradcheck::{numeric_gradient, assert_grad_close};
//! use ndarray::array;
//! let x = array![0.3, -1.2];
//! // f(x) = Σ x³, f′(x) = 3x²
//! let numeric = numeric_gradient(|x| x.mapv(|v| v.powi(3)).sum(), &x, 1e-5);
//! assert_grad_close("cube", &x.mapv(|v| 3.0 * v * v), &numeric, 1e-8);
//! ```

use ndarray::{Array, ArrayD, Dimension, IxDyn, Zip};

/// The default step: about the cube root of `f64`'s epsilon, which balances truncation and
/// rounding error for central differences.
pub const DEFAULT_STEP: f64 = 1e-5;

/// The default tolerance on the relative error for smooth functions at [`DEFAULT_STEP`].
pub const DEFAULT_TOLERANCE: f64 = 1e-6;

/// The central-difference gradient of `f` at `x`, one element at a time.
pub fn numeric_gradient<D: Dimension>(
    mut f: impl FnMut(&Array<f64, D>) -> f64,
    x: &Array<f64, D>,
    step: f64,
) -> Array<f64, D> {
    // Standard (row-major) layout, so that a flat index walks the elements in logical order.
    let mut probe = x.as_standard_layout().into_owned();
    let mut grad = Array::zeros(x.raw_dim());
    for i in 0..x.len() {
        let original = flat(&probe)[i];
        flat_mut(&mut probe)[i] = original + step;
        let up = f(&probe);
        flat_mut(&mut probe)[i] = original - step;
        let down = f(&probe);
        flat_mut(&mut probe)[i] = original;
        flat_mut(&mut grad)[i] = (up - down) / (2.0 * step);
    }
    grad
}

fn flat<D: Dimension>(a: &Array<f64, D>) -> &[f64] {
    a.as_slice().unwrap_or(&[])
}

fn flat_mut<D: Dimension>(a: &mut Array<f64, D>) -> &mut [f64] {
    a.as_slice_mut().unwrap_or(&mut [])
}

/// A deterministic array of `shape` with values in `[lo, hi)`, the same for the same `seed` on
/// every machine: test inputs without a random source.
///
/// ```
/// use tape_runtime::gradcheck::sample;
/// let x = sample(&[2, 3], 7, -0.5, 0.5);
/// assert_eq!(x, sample(&[2, 3], 7, -0.5, 0.5));
/// assert!(x.iter().all(|v| (-0.5..0.5).contains(v)));
/// ```
pub fn sample(shape: &[usize], seed: u64, lo: f64, hi: f64) -> ArrayD<f64> {
    // A 64-bit LCG (Knuth's MMIX constants); the top 53 bits make a uniform double.
    let mut state = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    ArrayD::from_shape_fn(IxDyn(shape), |_| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    })
}

/// The central-difference derivative of a scalar function.
pub fn numeric_derivative(mut f: impl FnMut(f64) -> f64, x: f64, step: f64) -> f64 {
    (f(x + step) - f(x - step)) / (2.0 * step)
}

/// The largest relative error `|a − n| / max(|a|, |n|, 1)` and the flat index where it occurs.
/// Shapes that differ give an infinite error.
pub fn max_relative_error<D: Dimension>(
    analytic: &Array<f64, D>,
    numeric: &Array<f64, D>,
) -> (f64, usize) {
    if analytic.shape() != numeric.shape() {
        return (f64::INFINITY, 0);
    }
    let mut worst = (0.0, 0);
    let mut i = 0;
    Zip::from(analytic).and(numeric).for_each(|&a, &n| {
        let err = relative_error(a, n);
        if err > worst.0 || err.is_nan() {
            worst = (if err.is_nan() { f64::INFINITY } else { err }, i);
        }
        i += 1;
    });
    worst
}

/// `|a − n| / max(|a|, |n|, 1)`.
pub fn relative_error(a: f64, n: f64) -> f64 {
    (a - n).abs() / a.abs().max(n.abs()).max(1.0)
}

/// Panics, printing both gradients and the relative error, unless `analytic` and `numeric`
/// agree within `tolerance`.
///
/// # Panics
/// When the largest relative error exceeds `tolerance` or the shapes differ.
#[track_caller]
pub fn assert_grad_close<D: Dimension>(
    what: &str,
    analytic: &Array<f64, D>,
    numeric: &Array<f64, D>,
    tolerance: f64,
) {
    let (err, at) = max_relative_error(analytic, numeric);
    assert!(
        err <= tolerance,
        "{what}: gradient mismatch, max relative error {err:.3e} at flat index {at} \
         (tolerance {tolerance:.1e})\n  analytic: {analytic}\n  numeric:  {numeric}"
    );
}

/// [`assert_grad_close`] for scalars.
///
/// # Panics
/// When the relative error exceeds `tolerance`.
#[track_caller]
pub fn assert_scalar_close(what: &str, analytic: f64, numeric: f64, tolerance: f64) {
    let err = relative_error(analytic, numeric);
    assert!(
        err <= tolerance,
        "{what}: derivative mismatch, relative error {err:.3e} (tolerance {tolerance:.1e})\n  \
         analytic: {analytic}\n  numeric:  {numeric}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn central_differences_of_a_quadratic_are_exact() {
        let x = array![[1.0, 2.0], [-3.0, 0.5]];
        let g = numeric_gradient(|x| x.mapv(|v| v * v).sum(), &x, 1e-3);
        let (err, _) = max_relative_error(&(2.0 * &x), &g);
        assert!(err < 1e-9, "relative error {err:e}");
    }

    #[test]
    #[should_panic(expected = "max relative error")]
    fn mismatch_reports_relative_error() {
        assert_grad_close("wrong", &array![1.0, 2.0], &array![1.0, 2.5], 1e-6);
    }
}
