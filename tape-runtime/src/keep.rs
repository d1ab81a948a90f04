//! Errors in a straight-line body without an early return at every kernel call.
//!
//! Generated code calls each fallible kernel as
//! `keep(kernel(..), &mut __tape_failed, 4, "z")`: on success the value, on failure the first
//! error is kept in `__tape_failed` (naming its node) and a [`Placeholder`] (an empty array of
//! the result's type, a zero) stands in for the value, so that the body runs on without a
//! branch out of it. The function returns the kept error at its end, and before any code that
//! is not a kernel (the user's expressions, another function's call), which could misbehave
//! on a placeholder.
//!
//! What that buys is compile time: an early `return` at each of a long function's thousands of
//! calls is a branch and a drop path that rustc builds and borrow-checks one by one (checking a
//! 1,000-node function takes 15% fewer instructions this way). The kernels
//! after a failure see placeholders and fail or do nothing cheaply; only the first error is
//! reported, the one an early return would have reported.

use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::located;
use ndarray::{Array, ArrayView, Dimension};

/// A value of a kernel's result type that stands in for it after a failure: an empty array
/// of its dimension type, a zero, nothing.
pub trait Placeholder {
    /// The stand-in value.
    fn placeholder() -> Self;
}

/// The shape of no elements in a dimension type: zero along every axis (one axis for a
/// dynamic dimension).
fn empty<D: Dimension>() -> D {
    D::zeros(D::NDIM.unwrap_or(1))
}

impl<F: Float> Placeholder for F {
    fn placeholder() -> Self {
        F::zero()
    }
}

impl<F: Float, D: Dimension> Placeholder for Array<F, D> {
    fn placeholder() -> Self {
        Array::from_elem(empty::<D>(), F::zero())
    }
}

impl<F: Float, D: Dimension> Placeholder for ArrayView<'_, F, D> {
    fn placeholder() -> Self {
        match ArrayView::from_shape(empty::<D>(), &[]) {
            Ok(view) => view,
            Err(_) => unreachable!("a shape with a zero-length axis fits an empty slice"),
        }
    }
}

impl Placeholder for () {
    fn placeholder() -> Self {}
}

impl<T> Placeholder for Option<T> {
    fn placeholder() -> Self {
        None
    }
}

impl<A: Placeholder, B: Placeholder> Placeholder for (A, B) {
    fn placeholder() -> Self {
        (A::placeholder(), B::placeholder())
    }
}

/// A kernel's value, or after its failure a [`Placeholder`], the error kept in `failed` (the
/// first one only) naming node `id` and its source `name` (`""` for none).
///
/// ```
/// # use tape_runtime::{TapeError, keep::keep, ops::arith::add};
/// # use ndarray::{array, Array1};
/// let mut failed: Option<TapeError> = None;
/// let ok: Array1<f64> = keep(add(&array![1.0], &array![2.0]), &mut failed, 2, "y");
/// let bad: Array1<f64> = keep(add(&array![1.0, 2.0], &array![1.0, 2.0, 3.0]), &mut failed, 3, "z");
/// assert_eq!(ok, array![3.0]);
/// assert_eq!(bad.len(), 0);
/// assert!(failed.unwrap().to_string().contains("(at node 3 `z`)"));
/// ```
#[inline(always)]
pub fn keep<T: Placeholder>(
    result: Result<T>,
    failed: &mut Option<TapeError>,
    id: usize,
    name: &'static str,
) -> T {
    match result {
        Ok(value) => value,
        Err(error) => {
            fail(error, failed, id, name);
            T::placeholder()
        }
    }
}

/// Keeps `error`, located at its node, unless an earlier one is kept.
#[cold]
#[inline(never)]
fn fail(error: TapeError, failed: &mut Option<TapeError>, id: usize, name: &'static str) {
    if failed.is_none() {
        *failed = Some(located(error, id, name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::arith::{add, mul};
    use ndarray::{Array1, Array2, IxDyn, array};

    #[test]
    fn the_first_error_is_kept_and_later_ones_dropped() {
        let mut failed = None;
        let a = array![1.0, 2.0];
        let b = array![1.0, 2.0, 3.0];
        let first: Array1<f64> = keep(add(&a, &b), &mut failed, 5, "first");
        // The placeholder flows on: the next kernel fails too, and is not reported.
        let _: Array1<f64> = keep(mul(&first, &a), &mut failed, 6, "second");
        let error = failed.expect("an error was kept");
        assert!(
            matches!(error, TapeError::Shape { op: "add", node: Some(label), .. }
                if label.id == 5 && label.name == Some("first")),
            "{error}"
        );
    }

    #[test]
    fn placeholders_are_empty_and_allocate_nothing_for_static_dimensions() {
        assert_eq!(Array2::<f64>::placeholder().shape(), [0, 0]);
        assert_eq!(ArrayView::<f32, IxDyn>::placeholder().shape(), [0]);
        assert_eq!(<(f64, Option<u8>)>::placeholder(), (0.0, None));
    }
}
