//! Buffer reuse in `_grad`: a kernel that takes a value nothing reads afterwards writes its
//! result into that value's buffer instead of a new one.
//!
//! The macro decides, per function, where each intermediate array is read for the last time
//! (forward kernels, and the VJPs that read values). A kernel there may take the array by
//! value: an elementwise op computes in place ([`unary`], [`into_lhs`], [`into_rhs`]), a VJP
//! writes its result into its operand ([`splat_vjp`], `loss::cross_entropy_vjp_owned`). Code
//! after the move still names the value for its type and shape (a VJP's operand whose values it
//! does not read, a gradient slot's type): it gets a [`ghost`] of it, a view of one zero
//! broadcast to the moved value's shape, which costs no allocation.
//!
//! Every kernel here computes exactly what its allocating counterpart computes, element by
//! element with the same `ops::elem` function; only where the result is written differs.

use crate::accumulate::Acc;
use crate::broadcast::Broadcast;
use crate::error::Result;
use crate::float::Float;
use crate::fuse::Strip;
use crate::tensor::{Tensor, Value, into_dim};
use ndarray::{Array, ArrayView, Dimension, ShapeBuilder, Zip};
use num_traits::Zero;

/// A value `_grad` may move into a kernel, and what later code gets in its place.
pub trait Movable: Value {
    /// The stand-in: a view of one zero broadcast to the array's shape (no buffer), or the
    /// scalar itself (scalars are copied, not moved).
    type Ghost: Tensor<Elem = Self::Elem, Dim = Self::Dim, Owned = Self>;

    /// The stand-in, made before the move.
    fn ghost(&self) -> Self::Ghost;
}

impl<F: Float> Movable for F {
    type Ghost = F;

    fn ghost(&self) -> F {
        *self
    }
}

impl<F: Float, D: Dimension> Movable for Array<F, D> {
    type Ghost = ArrayView<'static, F, D>;

    fn ghost(&self) -> ArrayView<'static, F, D> {
        let shape = self.raw_dim();
        let strides = D::zeros(shape.ndim());
        // Every offset is 0, inside the one-element slice, and the element count is that of
        // an array that exists: ndarray's checks cannot fail.
        match ArrayView::from_shape(
            shape.strides(strides),
            std::slice::from_ref(F::static_zero()),
        ) {
            Ok(view) => view,
            Err(error) => unreachable!("a zero-strided view of one element: {error}"),
        }
    }
}

/// The stand-in for `v` once it is moved: for an array, a view of one zero broadcast to its
/// shape (all strides 0); a scalar stands for itself. Made before the move, taken over by
/// `v`'s name after it.
pub fn ghost<V: Movable>(v: &V) -> V::Ghost {
    v.ghost()
}

/// `f(x)` elementwise, in `x`'s buffer: a unary elementwise op on an array read nowhere after.
/// Returns the result and `x`'s [`ghost`] (for the code after, which reads only its shape):
/// the move, the kernel and the rebinding are one statement of the generated code. It cannot
/// fail, so the generated code has no error path for it (in a long function, each error path
/// is a measurable share of `cargo check`).
pub fn unary<V: Movable>(x: V, f: impl Fn(V::Elem) -> V::Elem) -> (V, V::Ghost) {
    let ghost = x.ghost();
    (in_place(x, f), ghost)
}

/// [`unary`] for an op with a strip kernel (`tanh`): `strip` computes on a strip of
/// contiguous elements what `f` does on each (see
/// [`Value::map_strips_mut`]).
pub fn unary_strips<V: Movable>(
    x: V,
    strip: impl Fn(&Strip<V::Elem>) -> Strip<V::Elem>,
    f: impl Fn(V::Elem) -> V::Elem,
) -> (V, V::Ghost) {
    let ghost = x.ghost();
    let mut x = x;
    x.map_strips_mut(strip, f);
    (x, ghost)
}

/// [`unary`] for an op with a constant argument `c` (`powi`'s exponent).
pub fn unary_with<V: Movable, C: Copy>(
    x: V,
    c: C,
    f: impl Fn(V::Elem, C) -> V::Elem,
) -> (V, V::Ghost) {
    unary(x, |v| f(v, c))
}

fn in_place<V: Value>(x: V, f: impl Fn(V::Elem) -> V::Elem) -> V {
    let mut x = x;
    x.map_mut(f);
    x
}

/// `f(a, b)` elementwise, in `a`'s buffer when the result has `a`'s shape (`b` broadcasts
/// into it, as a bias row does); otherwise as the allocating kernel computes it. Returns the
/// result and `a`'s [`ghost`].
///
/// # Errors
/// [`TapeError::Shape`](crate::TapeError::Shape) naming `op` when the shapes do not broadcast.
pub fn into_lhs<A, B>(
    a: A,
    b: &B,
    op: &'static str,
    f: impl Fn(A::Elem, A::Elem) -> A::Elem,
) -> Result<(A::Out, A::Ghost)>
where
    A: Movable + Broadcast<B>,
    B: Tensor<Elem = A::Elem>,
{
    let ghost = a.ghost();
    let mut array = a.into_array();
    let fits = match b.as_view().broadcast(array.raw_dim()) {
        Some(b) => {
            Zip::from(&mut array)
                .and(&b)
                .for_each(|a, &b| *a = f(*a, b));
            true
        }
        None => false,
    };
    let out = if fits {
        into_dim(op, array).map(Value::from_array)
    } else {
        A::from_array(array).zip_with(b, op, f)
    };
    Ok((out?, ghost))
}

/// `f(a, b)` elementwise, in `b`'s buffer when the result has `b`'s shape; otherwise as the
/// allocating kernel computes it. Returns the result and `b`'s [`ghost`].
///
/// # Errors
/// [`TapeError::Shape`](crate::TapeError::Shape) naming `op` when the shapes do not broadcast.
pub fn into_rhs<A, B>(
    a: &A,
    b: B,
    op: &'static str,
    f: impl Fn(A::Elem, A::Elem) -> A::Elem,
) -> Result<(A::Out, B::Ghost)>
where
    A: Broadcast<B>,
    B: Movable<Elem = A::Elem>,
{
    let ghost = b.ghost();
    let mut array = b.into_array();
    let fits = match a.as_view().broadcast(array.raw_dim()) {
        Some(a) => {
            Zip::from(&mut array)
                .and(&a)
                .for_each(|b, &a| *b = f(a, *b));
            true
        }
        None => false,
    };
    let out = if fits {
        into_dim(op, array).map(Value::from_array)
    } else {
        a.zip_with(&B::from_array(array), op, f)
    };
    Ok((out?, ghost))
}

/// The VJP of a unary elementwise op whose cotangent is `g` on every element (its value was
/// only summed), written into its output `y`'s buffer, `x̄ᵢ = f(g, xᵢ, yᵢ)`, and added to `x`'s
/// slot through `acc`. Without a cotangent `y` is dropped. Returns `y`'s [`ghost`].
///
/// # Errors
/// [`TapeError::Shape`](crate::TapeError::Shape) when `x` and `y` differ in shape, [`TapeError::ContributionShape`](crate::TapeError::ContributionShape) when
/// `x̄` differs in shape from what `acc` already holds.
pub fn splat_vjp<V: Movable, X: Tensor<Elem = V::Elem, Dim = V::Dim>>(
    g: Option<V::Elem>,
    x: &X,
    y: V,
    f: impl Fn(V::Elem, V::Elem, V::Elem) -> V::Elem,
    acc: Acc<'_, V>,
) -> Result<V::Ghost> {
    let ghost = y.ghost();
    if let Some(g) = g.filter(|_| acc.wanted()) {
        crate::tensor::check_same_shape(
            "reuse",
            "output and input differ",
            y.shape_of(),
            x.shape_of(),
        )?;
        let mut y = y;
        y.update(x.as_view(), |y, x| f(g, x, y));
        acc.put(y)?;
    }
    Ok(ghost)
}

/// [`splat_vjp`] for an op whose VJP reads only the output (`tanh`, `exp`): there is no `x`.
///
/// # Errors
/// [`TapeError::ContributionShape`](crate::TapeError::ContributionShape) when `x̄` differs in shape from what `acc` already holds.
pub fn splat_vjp_output<V: Movable>(
    g: Option<V::Elem>,
    y: V,
    f: impl Fn(V::Elem, V::Elem, V::Elem) -> V::Elem,
    acc: Acc<'_, V>,
) -> Result<V::Ghost> {
    let ghost = y.ghost();
    if let Some(g) = g.filter(|_| acc.wanted()) {
        let zero = V::Elem::zero();
        acc.put(in_place(y, |y| f(g, zero, y)))?;
    }
    Ok(ghost)
}

/// [`splat_vjp`] for an op with a constant argument `c` (`powi`'s exponent).
///
/// # Errors
/// As [`splat_vjp`].
pub fn splat_vjp_with<V: Movable, X: Tensor<Elem = V::Elem, Dim = V::Dim>, C: Copy>(
    g: Option<V::Elem>,
    x: &X,
    y: V,
    c: C,
    f: impl Fn(V::Elem, V::Elem, V::Elem, C) -> V::Elem,
    acc: Acc<'_, V>,
) -> Result<V::Ghost> {
    splat_vjp(g, x, y, |g, x, y| f(g, x, y, c), acc)
}

/// The cotangent `sum`'s operand receives on every element.
pub fn sum_splat<T: Tensor>(g: T::Elem, _x: &T) -> T::Elem {
    g
}

/// The cotangent `mean`'s operand receives on every element: `ḡ / n`.
pub fn mean_splat<T: Tensor>(g: T::Elem, x: &T) -> T::Elem {
    g / T::Elem::from_usize(x.as_view().len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{arith, elem, unary as kernels};
    use ndarray::{Array1, Array2, array};

    #[test]
    fn in_place_kernels_match_the_allocating_ones() {
        let x = array![[0.3, -1.2, 2.0], [0.1, 0.0, -0.7]];
        let b = array![0.5, -0.25, 1.5];
        let (y, ghost) = unary(x.clone(), elem::tanh);
        assert_eq!(y, kernels::tanh(&x).unwrap());
        assert_eq!((ghost.shape(), ghost.strides()), (x.shape(), &[0, 0][..]));
        assert_eq!(
            unary_with(x.clone(), 3, elem::powi).0,
            kernels::powi(&x, 3).unwrap()
        );
        let (y, ghost) = into_lhs(x.clone(), &b, "sub", elem::sub).unwrap();
        assert_eq!(y, arith::sub(&x, &b).unwrap());
        assert_eq!(ghost.shape(), x.shape());
        let (y, ghost) = into_rhs(&b, x.clone(), "sub", elem::sub).unwrap();
        assert_eq!(y, arith::sub(&b, &x).unwrap());
        assert_eq!(ghost.shape(), x.shape());
        // The result is larger than the moved operand: computed as the kernel does.
        let (y, ghost) = into_lhs(b.clone(), &x, "div", elem::div).unwrap();
        assert_eq!(y, arith::div(&b, &x).unwrap());
        assert_eq!(ghost.shape(), b.shape());
        assert_eq!(
            into_rhs(&x, b.clone(), "mul", elem::mul).unwrap().0,
            arith::mul(&x, &b).unwrap()
        );
        let err = into_lhs(Array1::<f64>::zeros(4), &b, "add", elem::add).unwrap_err();
        assert_eq!(err.to_string(), "add: shapes do not broadcast: [4] and [3]");
    }

    #[test]
    fn splat_vjps_match_the_filled_cotangent() {
        let x = array![[0.3, -1.2], [2.0, 0.4]];
        let y = kernels::tanh(&x).unwrap();
        let filled = Array2::from_elem((2, 2), 0.5);
        let mut expected = None;
        kernels::tanh_vjp(filled.clone(), &x, &y, Acc::to(&mut expected)).unwrap();
        let expected = expected.unwrap();
        let mut got = None;
        let ghost = splat_vjp(Some(0.5), &x, y.clone(), elem::tanh_vjp, Acc::to(&mut got)).unwrap();
        assert_eq!(got.as_ref(), Some(&expected));
        assert_eq!(ghost.shape(), x.shape());
        let mut got = None;
        splat_vjp_output(Some(0.5), y.clone(), elem::tanh_vjp, Acc::to(&mut got)).unwrap();
        assert_eq!(got.as_ref(), Some(&expected));
        // A second contribution is added to the first.
        splat_vjp_output(Some(0.5), y.clone(), elem::tanh_vjp, Acc::to(&mut got)).unwrap();
        assert_eq!(got, Some(&expected * 2.0));
        // Without a cotangent, nothing is added.
        let mut got = None;
        splat_vjp_output(None, y.clone(), elem::tanh_vjp, Acc::to(&mut got)).unwrap();
        assert_eq!(got, None);
        let mut expected = None;
        let cubed = kernels::powi(&x, 3).unwrap();
        kernels::powi_vjp(filled, &x, &cubed, 3, Acc::to(&mut expected)).unwrap();
        let mut got = None;
        splat_vjp_with(Some(0.5), &x, cubed, 3, elem::powi_vjp, Acc::to(&mut got)).unwrap();
        assert_eq!(got, expected);
        let err = splat_vjp(
            Some(0.5),
            &x,
            Array2::zeros((2, 3)),
            elem::tanh_vjp,
            Acc::to(&mut None),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "reuse: output and input differ: [2, 3] and [2, 2]"
        );
        assert_eq!(mean_splat(2.0, &x), 0.5);
        assert_eq!(sum_splat(2.0, &x), 2.0);
    }

    #[test]
    fn ghosts_have_the_shape_and_no_buffer() {
        let x = Array2::<f64>::ones((3, 4));
        let g = ghost(&x);
        assert_eq!(g.shape(), &[3, 4]);
        assert_eq!(g.strides(), &[0, 0]);
        assert!(g.iter().all(|&v| v == 0.0));
        assert_eq!(ghost(&Array2::<f32>::zeros((0, 2))).shape(), &[0, 2]);
        assert_eq!(ghost(&2.5_f64), 2.5);
    }
}
