//! Arithmetic: `a + b`, `a - b`, `a * b`, `a / b` (broadcasting, scalar⊗array mixes) and `-x`.
//!
//! Operands broadcast like ndarray's operators; each VJP sums its contribution back over the
//! broadcast axes, so every gradient has its operand's exact shape.

use super::{binary_vjp, elem};
use crate::accumulate::Acc;
use crate::broadcast::Broadcast;
use crate::error::Result;
use crate::tensor::{Tensor, Value, check_same_shape};
use num_traits::{One, Zero};

/// `y = a + b`. PyTorch `a + b`, JAX `a + b`.
///
/// ```
/// # use tape_runtime::ops::arith::add;
/// # use ndarray::array;
/// assert_eq!(add(&array![[1.0, 2.0]], &array![10.0, 20.0]).unwrap(), array![[11.0, 22.0]]);
/// ```
///
/// # Errors
/// [`TapeError::Shape`](crate::TapeError::Shape) when the shapes do not broadcast.
pub fn add<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(a: &A, b: &B) -> Result<A::Out> {
    a.zip_with(b, "add", elem::add)
}

/// VJP of [`add`]: `ā = ḡ`, `b̄ = ḡ`, each summed back to its operand's shape.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn add_vjp<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(
    g: A::Out,
    a: &A,
    b: &B,
    _y: &impl Tensor,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
) -> Result<()> {
    pass_both("add", g, a, b, da, db, false)
}

/// The VJP of `a ± b`: `g` summed back to each operand's shape, negated for `b` in a
/// difference. When both want it, `b`'s share is summed from the borrowed `g` first (for a
/// bias, a row's worth of memory) and `a` takes `g` itself.
fn pass_both<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(
    op: &'static str,
    g: A::Out,
    a: &A,
    b: &B,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
    negate_b: bool,
) -> Result<()> {
    if !da.wanted() {
        if db.wanted() {
            db.put(negated(A::pass_rhs(g, b, op)?, negate_b))?;
        }
        return Ok(());
    }
    if db.wanted() {
        db.put(negated(A::pass_rhs_ref(&g, b, op)?, negate_b))?;
    }
    da.put(A::pass_lhs(g, a, op)?)
}

fn negated<T: Value>(mut x: T, negate: bool) -> T {
    if negate {
        x.map_mut(|v| -v);
    }
    x
}

/// `y = a − b`. PyTorch `a - b`, JAX `a - b`.
///
/// ```
/// # use tape_runtime::ops::arith::sub;
/// assert_eq!(sub(&3.0_f64, &1.0_f64).unwrap(), 2.0);
/// ```
///
/// # Errors
/// [`TapeError::Shape`](crate::TapeError::Shape) when the shapes do not broadcast.
pub fn sub<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(a: &A, b: &B) -> Result<A::Out> {
    a.zip_with(b, "sub", elem::sub)
}

/// VJP of [`sub`]: `ā = ḡ`, `b̄ = −ḡ`, summed back to each operand's shape.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn sub_vjp<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(
    g: A::Out,
    a: &A,
    b: &B,
    _y: &impl Tensor,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
) -> Result<()> {
    pass_both("sub", g, a, b, da, db, true)
}

/// `y = a ⊙ b` (elementwise). PyTorch `a * b`, JAX `a * b`.
///
/// ```
/// # use tape_runtime::ops::arith::mul;
/// # use ndarray::array;
/// assert_eq!(mul(&array![1.0, 2.0], &3.0_f64).unwrap(), array![3.0, 6.0]);
/// ```
///
/// # Errors
/// [`TapeError::Shape`](crate::TapeError::Shape) when the shapes do not broadcast.
pub fn mul<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(a: &A, b: &B) -> Result<A::Out> {
    a.zip_with(b, "mul", elem::mul)
}

/// VJP of [`mul`]: `ā = ḡ ⊙ b`, `b̄ = ḡ ⊙ a`, summed back to each operand's shape.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn mul_vjp<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(
    g: A::Out,
    a: &A,
    b: &B,
    _y: &impl Tensor,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
) -> Result<()> {
    binary_vjp("mul", g, a, b, da, db, elem::mul_vjp)
}

/// `y = a / b` (elementwise). PyTorch `a / b`, JAX `a / b`.
///
/// ```
/// # use tape_runtime::ops::arith::div;
/// assert_eq!(div(&1.0_f64, &4.0_f64).unwrap(), 0.25);
/// ```
///
/// # Errors
/// [`TapeError::Shape`](crate::TapeError::Shape) when the shapes do not broadcast.
pub fn div<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(a: &A, b: &B) -> Result<A::Out> {
    a.zip_with(b, "div", elem::div)
}

/// VJP of [`div`]: `ā = ḡ / b`, `b̄ = −ḡ·(a/b)/b`.
///
/// `b̄` divides twice rather than by `b²`, which would overflow for `|b| > 1e154` and lose
/// the gradient where `a/b` itself is finite.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn div_vjp<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(
    g: A::Out,
    a: &A,
    b: &B,
    _y: &impl Tensor,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
) -> Result<()> {
    binary_vjp("div", g, a, b, da, db, elem::div_vjp)
}

/// `y = −x`. PyTorch `-x`, JAX `-x`.
///
/// ```
/// # use tape_runtime::ops::arith::neg;
/// assert_eq!(neg(&2.0_f64).unwrap(), -2.0);
/// ```
///
/// # Errors
/// Never; `Result` keeps every kernel's signature alike.
pub fn neg<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(T::Owned::map_view(x.as_view(), elem::neg))
}

/// VJP of [`neg`]: `x̄ = −ḡ`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn neg_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    _y: &impl Tensor,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    dx.put_with(|| {
        check_same_shape(
            "neg",
            "cotangent and input differ",
            g.shape_of(),
            x.shape_of(),
        )?;
        let mut g = g;
        g.map_mut(|v| -v);
        Ok(g)
    })
}

/// The multiplicative identity, the seed of a scalar output's sweep.
pub fn one<F: One>() -> F {
    F::one()
}

/// The additive identity.
pub fn zero<F: Zero>() -> F {
    F::zero()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_fd2, det, vjp2};
    use super::*;
    use ndarray::{Array1, Array2, ArrayD, array};

    #[test]
    fn add_sub_pass_the_cotangent_and_sum_broadcast_axes() {
        // y = a + b with b: [3] broadcast over 2 rows; ā = ḡ, b̄ = column sums of ḡ.
        let a = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let b = array![1.0, 1.0, 1.0];
        let g = array![[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]];
        let y = add(&a, &b).unwrap();
        let (mut da, mut db) = (None, None);
        add_vjp(g.clone(), &a, &b, &y, Acc::to(&mut da), Acc::to(&mut db)).unwrap();
        assert_eq!(da.unwrap(), g);
        assert_eq!(db.unwrap(), array![11.0, 22.0, 33.0]);
        // y = a − b: b̄ = −(column sums of ḡ).
        let (mut da, mut db) = (None, None);
        sub_vjp(g.clone(), &a, &b, &y, Acc::to(&mut da), Acc::to(&mut db)).unwrap();
        assert_eq!(db.unwrap(), array![-11.0, -22.0, -33.0]);
    }

    #[test]
    fn mul_div_analytic() {
        // y = a·b: ā = ḡ·b, b̄ = ḡ·a.  y = a/b: ā = ḡ/b, b̄ = −ḡ·a/b².
        let (a, b) = (array![3.0_f64, -2.0], array![4.0_f64, 0.5]);
        let g = Array1::ones(2);
        let (ga, gb) = vjp2(
            mul,
            mul_vjp,
            &a.clone().into_dyn(),
            &b.clone().into_dyn(),
            &g.clone().into_dyn(),
        );
        assert_eq!(ga, b.clone().into_dyn());
        assert_eq!(gb, a.clone().into_dyn());
        let (ga, gb) = vjp2(
            div,
            div_vjp,
            &a.clone().into_dyn(),
            &b.clone().into_dyn(),
            &g.into_dyn(),
        );
        assert_eq!(ga, array![0.25, 2.0].into_dyn());
        assert_eq!(gb, array![-3.0 / 16.0, 8.0].into_dyn());
    }

    #[test]
    fn div_vjp_does_not_overflow_through_b_squared() {
        // a/b = 1 for a = b = 1e200, and b̄ = −ḡ·(a/b)/b = −1e-200; ḡ·a/b² would give 0·∞.
        let (a, b) = (1e200_f64, 1e200_f64);
        let (mut da, mut db) = (None, None);
        div_vjp(1.0, &a, &b, &1.0, Acc::to(&mut da), Acc::to(&mut db)).unwrap();
        assert_eq!(db, Some(-1e-200));
        assert_eq!(da, Some(1e-200));
    }

    #[test]
    fn scalar_array_mixes_reduce_to_a_scalar_gradient() {
        // y = s·x: s̄ = Σ ḡ ⊙ x; x̄ = s·ḡ.
        let x = array![[1.0_f64, 2.0], [3.0, 4.0]];
        let s = 2.0_f64;
        let y = mul(&s, &x).unwrap();
        let (mut ds, mut dx) = (None, None);
        mul_vjp(
            Array2::ones((2, 2)),
            &s,
            &x,
            &y,
            Acc::to(&mut ds),
            Acc::to(&mut dx),
        )
        .unwrap();
        assert_eq!(ds, Some(10.0));
        assert_eq!(dx, Some(Array2::from_elem((2, 2), 2.0)));
    }

    #[test]
    fn neg_analytic() {
        // y = −x: x̄ = −ḡ.
        let x = array![1.0_f64, -2.0];
        let mut dx = None;
        neg_vjp(array![1.0, 3.0], &x, &neg(&x).unwrap(), Acc::to(&mut dx)).unwrap();
        assert_eq!(dx, Some(array![-1.0, -3.0]));
    }

    fn fd_cases() -> Vec<(ArrayD<f64>, ArrayD<f64>)> {
        vec![
            (det(&[3, 4], 1, -1.0, 1.0), det(&[3, 4], 2, 0.5, 2.0)),
            (det(&[3, 4], 3, -1.0, 1.0), det(&[4], 4, 0.5, 2.0)),
            (det(&[3, 1], 5, -1.0, 1.0), det(&[1, 4], 6, 0.5, 2.0)),
            (det(&[], 7, -1.0, 1.0), det(&[2, 3], 8, 0.5, 2.0)),
        ]
    }

    #[test]
    fn arith_vjps_match_fd() {
        for (a, b) in fd_cases() {
            check_fd2("add", add, add_vjp, &a, &b, 1e-8);
            check_fd2("sub", sub, sub_vjp, &a, &b, 1e-8);
            check_fd2("mul", mul, mul_vjp, &a, &b, 1e-8);
            check_fd2("div", div, div_vjp, &a, &b, 1e-7);
            check_fd2(
                "div (swapped)",
                |a, b| div(b, a),
                |g, a, b, y, da, db| div_vjp(g, b, a, y, db, da),
                &b,
                &a.mapv(|v| v + 3.0),
                1e-7,
            );
        }
    }

    #[test]
    fn neg_matches_fd() {
        let x = det(&[2, 3], 11, -1.0, 1.0);
        super::super::testing::check_fd1("neg", neg, neg_vjp, &x, 1e-8);
    }

    #[test]
    fn works_in_f32() {
        let a = array![1.0_f32, 2.0];
        let y = mul(&a, &3.0_f32).unwrap();
        assert_eq!(y, array![3.0_f32, 6.0]);
    }

    #[test]
    fn non_broadcastable_operands_are_an_error() {
        let err = add(&Array2::<f64>::zeros((4, 3)), &Array1::<f64>::zeros(4)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add: shapes do not broadcast: [4, 3] and [4]"
        );
    }
}
