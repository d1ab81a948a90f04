//! Elementwise comparisons: `maximum`, `minimum` (broadcasting) and `clamp`.
//!
//! At a tie the cotangent is split evenly between the two sides, so `maximum(x, x)` has
//! derivative 1 in `x` and the choice of side never biases a gradient.

use super::{binary_vjp, elem, unary_vjp};
use crate::accumulate::Acc;
use crate::broadcast::Broadcast;
use crate::error::{Result, TapeError};
use crate::tensor::{Tensor, Value};

/// `y = max(a, b)` elementwise. PyTorch `torch.maximum`, JAX `jnp.maximum`.
///
/// ```
/// # use tape_runtime::ops::compare::maximum;
/// # use ndarray::array;
/// assert_eq!(maximum(&array![-1.0, 2.0], &0.0_f64).unwrap(), array![0.0, 2.0]);
/// ```
///
/// # Errors
/// [`TapeError::Shape`] when the shapes do not broadcast.
pub fn maximum<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(a: &A, b: &B) -> Result<A::Out> {
    a.zip_with(b, "maximum", elem::maximum)
}

/// VJP of [`maximum`]: `ā = ḡ·[a > b]`, `b̄ = ḡ·[b > a]`, each `½ḡ` at a tie.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn maximum_vjp<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(
    g: A::Out,
    a: &A,
    b: &B,
    _y: &impl Tensor,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
) -> Result<()> {
    binary_vjp("maximum", g, a, b, da, db, elem::maximum_vjp)
}

/// `y = min(a, b)` elementwise. PyTorch `torch.minimum`, JAX `jnp.minimum`.
///
/// ```
/// # use tape_runtime::ops::compare::minimum;
/// # use ndarray::array;
/// assert_eq!(minimum(&array![-1.0, 2.0], &0.0_f64).unwrap(), array![-1.0, 0.0]);
/// ```
///
/// # Errors
/// [`TapeError::Shape`] when the shapes do not broadcast.
pub fn minimum<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(a: &A, b: &B) -> Result<A::Out> {
    a.zip_with(b, "minimum", elem::minimum)
}

/// VJP of [`minimum`]: `ā = ḡ·[a < b]`, `b̄ = ḡ·[b < a]`, each `½ḡ` at a tie.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn minimum_vjp<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(
    g: A::Out,
    a: &A,
    b: &B,
    _y: &impl Tensor,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
) -> Result<()> {
    binary_vjp("minimum", g, a, b, da, db, elem::minimum_vjp)
}

/// `y = min(max(x, lo), hi)` with constant bounds. PyTorch `torch.clamp`, JAX `jnp.clip`.
///
/// ```
/// # use tape_runtime::ops::compare::clamp;
/// assert_eq!(clamp(&3.0_f64, 0.0, 1.0).unwrap(), 1.0);
/// ```
///
/// # Errors
/// [`TapeError::Domain`] when `lo > hi` or a bound is NaN.
pub fn clamp<T: Tensor>(x: &T, lo: T::Elem, hi: T::Elem) -> Result<T::Owned> {
    if lo
        .partial_cmp(&hi)
        .is_none_or(|o| o == std::cmp::Ordering::Greater)
    {
        return Err(TapeError::domain(
            "clamp",
            format!("lower bound {lo} is not ≤ upper bound {hi}"),
        ));
    }
    Ok(T::Owned::map_view(x.as_view(), |v| elem::clamp(v, lo, hi)))
}

/// VJP of [`clamp`]: `x̄ = ḡ` strictly inside `(lo, hi)`, `0` at and beyond the bounds.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn clamp_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    lo: T::Elem,
    hi: T::Elem,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("clamp", g, x, y, dx, move |g, x, y| {
        elem::clamp_vjp(g, x, y, lo, hi)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_fd1, check_fd2, det, vjp2};
    use super::*;
    use ndarray::array;

    #[test]
    fn ties_split_the_cotangent() {
        // max(a, b): ā = [a > b], b̄ = [b > a], ½ each at a tie.
        let a = array![1.0, 2.0, 3.0].into_dyn();
        let b = array![3.0, 2.0, 1.0].into_dyn();
        let g = array![1.0, 1.0, 1.0].into_dyn();
        let (ga, gb) = vjp2(maximum, maximum_vjp, &a, &b, &g);
        assert_eq!(ga, array![0.0, 0.5, 1.0].into_dyn());
        assert_eq!(gb, array![1.0, 0.5, 0.0].into_dyn());
        let (ga, gb) = vjp2(minimum, minimum_vjp, &a, &b, &g);
        assert_eq!(ga, array![1.0, 0.5, 0.0].into_dyn());
        assert_eq!(gb, array![0.0, 0.5, 1.0].into_dyn());
    }

    #[test]
    fn clamp_is_flat_at_and_beyond_the_bounds() {
        // clamp′ = 1 inside (lo, hi), 0 at and beyond.
        let x = array![-2.0_f64, -1.0, 0.0, 1.0, 2.0];
        let y = clamp(&x, -1.0, 1.0).unwrap();
        assert_eq!(y, array![-1.0, -1.0, 0.0, 1.0, 1.0]);
        let mut d = None;
        clamp_vjp(
            array![1.0, 1.0, 1.0, 1.0, 1.0],
            &x,
            &y,
            -1.0,
            1.0,
            Acc::to(&mut d),
        )
        .unwrap();
        assert_eq!(d, Some(array![0.0, 0.0, 1.0, 0.0, 0.0]));
        assert!(clamp(&x, 1.0, -1.0).is_err());
    }

    #[test]
    fn compare_vjps_match_fd() {
        // Values far from ties, where the functions are smooth.
        let a = det(&[3, 4], 1, -1.0, 1.0);
        let b = det(&[4], 2, -1.0, 1.0);
        check_fd2("maximum", maximum, maximum_vjp, &a, &b, 1e-8);
        check_fd2("minimum", minimum, minimum_vjp, &a, &b, 1e-8);
        check_fd1(
            "clamp",
            |x| clamp(x, -0.5, 0.5),
            |g, x, y, d| clamp_vjp(g, x, y, -0.5, 0.5, d),
            &a,
            1e-8,
        );
    }
}
