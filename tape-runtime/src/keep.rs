//! Errors in a straight-line body without an early return at every kernel call.
//!
//! Generated code calls each fallible kernel as `keep(kernel(..), 4, "z")`: on success the
//! value; on failure the first error is kept (naming its node) and a [`Placeholder`] (an empty
//! array of the result's type, a zero) stands in for the value, so that the body runs on
//! without a branch out of it. The body returns the kept error ([`take`]) at its end, and
//! before code that is not a kernel (the user's expressions reading a computed value, another
//! function's call), which could misbehave on a placeholder.
//!
//! The kept error lives in a thread-local slot that each generated body claims with a
//! [`Scope`]: it sets aside what its caller had pending and puts it back when the body ends,
//! returning or unwinding, so a generated function called from inside another never sees or
//! loses the other's error. A local slot passed by reference to every call would do the same,
//! but a local whose address reaches a thousand calls is what LLVM optimizes worst: it doubled
//! the release build of a 1,000-node chain.
//!
//! What it buys is compile time: an early `return` at each of a long function's thousands of
//! calls is a branch and a drop path that rustc builds and borrow-checks one by one. Checking a
//! 1,000-node function takes about a fifth fewer instructions this way. The kernels after a
//! failure see placeholders and fail or do nothing cheaply; only the first error is reported,
//! the one an early return would have reported.

use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::located;
use ndarray::{Array, ArrayView, Dimension};
use std::cell::Cell;

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

thread_local! {
    /// The first error of the generated body running on this thread, if any (see [`Scope`]).
    static FAILED: Cell<Option<TapeError>> = const { Cell::new(None) };
}

/// A generated body's claim on the thread's error slot: [`Scope::enter`] sets aside whatever
/// the caller had kept, and dropping the scope (the body returned, or is unwinding) puts it
/// back.
#[must_use = "the scope ends, and restores the caller's error, when it is dropped"]
pub struct Scope {
    outer: Option<TapeError>,
}

impl Scope {
    /// Starts a body with an empty slot.
    #[inline]
    pub fn enter() -> Scope {
        Scope {
            outer: FAILED.with(Cell::take),
        }
    }
}

impl Drop for Scope {
    #[inline]
    fn drop(&mut self) {
        let outer = self.outer.take();
        FAILED.with(|slot| slot.set(outer));
    }
}

/// A kernel's value, or after its failure a [`Placeholder`], the error kept (the first one of
/// the body only) naming node `id` and its source `name` (`""` for none).
///
/// ```
/// # use tape_runtime::{keep::{Scope, keep, take}, ops::arith::add};
/// # use ndarray::{array, Array1};
/// let _scope = Scope::enter();
/// let ok: Array1<f64> = keep(add(&array![1.0], &array![2.0]), 2, "y");
/// let bad: Array1<f64> = keep(add(&array![1.0, 2.0], &array![1.0, 2.0, 3.0]), 3, "z");
/// assert_eq!(ok, array![3.0]);
/// assert_eq!(bad.len(), 0);
/// assert!(take().unwrap().to_string().contains("(at node 3 `z`)"));
/// ```
#[inline(always)]
pub fn keep<T: Placeholder>(result: Result<T>, id: usize, name: &'static str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => fail(error, id, name),
    }
}

/// The error kept since the body's [`Scope::enter`], if any; the slot is empty afterwards.
#[inline]
pub fn take() -> Option<TapeError> {
    FAILED.with(Cell::take)
}

/// Keeps `error`, located at its node, unless an earlier one is kept, and returns the
/// placeholder: out of line, so that each call site adds one call on its error path.
#[cold]
#[inline(never)]
fn fail<T: Placeholder>(error: TapeError, id: usize, name: &'static str) -> T {
    FAILED.with(|slot| {
        let kept = slot.take().unwrap_or_else(|| located(error, id, name));
        slot.set(Some(kept));
    });
    T::placeholder()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::arith::{add, mul};
    use ndarray::{Array1, Array2, IxDyn, array};

    fn mismatched(id: usize, name: &'static str) -> Array1<f64> {
        keep(add(&array![1.0, 2.0], &array![1.0, 2.0, 3.0]), id, name)
    }

    fn kept_at(error: Option<TapeError>) -> Option<(usize, Option<&'static str>)> {
        match error? {
            TapeError::Shape {
                node: Some(label), ..
            } => Some((label.id, label.name)),
            other => panic!("unexpected error {other}"),
        }
    }

    #[test]
    fn the_first_error_is_kept_and_later_ones_dropped() {
        let _scope = Scope::enter();
        let first = mismatched(5, "first");
        // The placeholder flows on: the next kernel fails too, and is not reported.
        let _: Array1<f64> = keep(mul(&first, &array![1.0, 2.0]), 6, "second");
        assert_eq!(kept_at(take()), Some((5, Some("first"))));
        assert!(take().is_none(), "take empties the slot");
    }

    #[test]
    fn a_nested_scope_neither_sees_nor_loses_its_callers_error() {
        let _outer = Scope::enter();
        let _ = mismatched(1, "outer");
        {
            let _inner = Scope::enter();
            assert!(take().is_none(), "the caller's error is set aside");
            let _ = mismatched(2, "inner");
        }
        assert_eq!(kept_at(take()), Some((1, Some("outer"))));
        // Unwinding out of a scope restores the caller's error too.
        let _ = mismatched(3, "again");
        let unwound = std::panic::catch_unwind(|| {
            let _inner = Scope::enter();
            let _ = mismatched(4, "panicked");
            panic!("user code panicked");
        });
        assert!(unwound.is_err());
        assert_eq!(kept_at(take()), Some((3, Some("again"))));
    }

    #[test]
    fn placeholders_are_empty_and_allocate_nothing_for_static_dimensions() {
        assert_eq!(Array2::<f64>::placeholder().shape(), [0, 0]);
        assert_eq!(ArrayView::<f32, IxDyn>::placeholder().shape(), [0]);
        assert_eq!(<(f64, Option<u8>)>::placeholder(), (0.0, None));
    }
}
