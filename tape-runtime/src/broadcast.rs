//! Broadcasting like ndarray (NumPy rules), and its reverse: [`unbroadcast`] sums a cotangent
//! back to an operand's shape.
//!
//! [`Broadcast`] is implemented for every pair of operands an elementwise binary op accepts:
//! scalar⊗scalar, scalar⊗array, array⊗scalar and array⊗array (any two dimension types whose
//! `DimMax` exists, as in ndarray's own arithmetic).

use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::tensor::{Tensor, Value, into_dim};
use ndarray::{Array, ArrayBase, ArrayD, ArrayView, Axis, Data, DimMax, Dimension, IxDyn, Zip};

/// The shape two operands broadcast to, or a [`TapeError::Shape`] naming `op`.
pub fn broadcast_shape(op: &'static str, lhs: &[usize], rhs: &[usize]) -> Result<IxDyn> {
    let n = lhs.len().max(rhs.len());
    // `IxDyn` keeps up to four axes inline: no allocation for the usual shapes.
    let mut out = IxDyn::zeros(n);
    for i in 0..n {
        // Align from the right; a missing axis counts as 1.
        let l = if i + lhs.len() >= n {
            lhs[i + lhs.len() - n]
        } else {
            1
        };
        let r = if i + rhs.len() >= n {
            rhs[i + rhs.len() - n]
        } else {
            1
        };
        out[i] = match (l, r) {
            (l, r) if l == r => l,
            (1, r) => r,
            (l, 1) => l,
            _ => return Err(TapeError::shape(op, "shapes do not broadcast", lhs, rhs)),
        };
    }
    Ok(out)
}

/// Sums a cotangent of the broadcast shape back to `target` (the operand's shape): over the
/// leading axes the operand lacks and over the axes where it has length 1.
///
/// ```
/// use tape_runtime::broadcast::unbroadcast;
/// use ndarray::array;
/// let g = array![[1.0, 2.0], [3.0, 4.0]].into_dyn();
/// // b: [2] was broadcast over the rows: its gradient is the column sums.
/// assert_eq!(unbroadcast(g, &[2]).unwrap(), array![4.0, 6.0].into_dyn());
/// ```
///
/// # Errors
/// [`TapeError::ContributionShape`] when `target` does not broadcast to the cotangent's shape.
pub fn unbroadcast<F: Float>(cotangent: ArrayD<F>, target: &[usize]) -> Result<ArrayD<F>> {
    let mismatch = |got: &[usize]| TapeError::ContributionShape {
        op: "unbroadcast",
        expected: target.to_vec(),
        got: got.to_vec(),
        node: None,
    };
    if cotangent.shape() == target {
        return Ok(cotangent);
    }
    if cotangent.ndim() < target.len() {
        return Err(mismatch(cotangent.shape()));
    }
    let mut c = cotangent;
    while c.ndim() > target.len() {
        c = c.sum_axis(Axis(0));
    }
    for (axis, &len) in target.iter().enumerate() {
        if len == 1 && c.shape()[axis] != 1 {
            c = c.sum_axis(Axis(axis)).insert_axis(Axis(axis));
        }
    }
    if c.shape() == target {
        Ok(c)
    } else {
        Err(mismatch(c.shape()))
    }
}

/// The dimension value of type `D` for `shape`, or an error when `D` has another rank.
fn dim_of<D: Dimension>(op: &'static str, shape: &[usize]) -> Result<D> {
    if D::NDIM.is_some_and(|n| n != shape.len()) {
        return Err(TapeError::rank(
            op,
            "result rank does not fit the declared dimension type",
            shape,
        ));
    }
    let mut dim = D::zeros(shape.len());
    dim.slice_mut().copy_from_slice(shape);
    Ok(dim)
}

/// `f(a, b)` elementwise over the broadcast shape. Both operands are viewed at the result's
/// static dimension, so the loop runs without dynamic-dimension indexing.
fn zip_views<F: Float, DA: Dimension, DB: Dimension, DO: Dimension>(
    op: &'static str,
    a: ArrayView<'_, F, DA>,
    b: ArrayView<'_, F, DB>,
    f: impl Fn(F, F) -> F,
) -> Result<Array<F, DO>> {
    let dim: DO = if a.shape() == b.shape() {
        dim_of(op, a.shape())?
    } else {
        dim_of(op, broadcast_shape(op, a.shape(), b.shape())?.slice())?
    };
    let bad = || TapeError::shape(op, "shapes do not broadcast", a.shape(), b.shape());
    let a2 = a.broadcast(dim.clone()).ok_or_else(bad)?;
    let b2 = b.broadcast(dim).ok_or_else(bad)?;
    // Two standard-layout operands of one shape: one loop over slices.
    if let (Some(x), Some(y)) = (a2.as_slice(), b2.as_slice()) {
        let data: Vec<F> = x.iter().zip(y).map(|(&x, &y)| f(x, y)).collect();
        if let Ok(out) = Array::from_shape_vec(a2.raw_dim(), data) {
            return Ok(out);
        }
    }
    Ok(Zip::from(&a2).and(&b2).map_collect(|&x, &y| f(x, y)))
}

/// Which operand of a binary op a gradient is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Lhs,
    Rhs,
}

/// `unbroadcast(f(g, a, b))` to the chosen operand's shape, computed in `g`'s buffer.
fn grad_views<F: Float, DA: Dimension, DB: Dimension, DO: Dimension, DT: Dimension>(
    op: &'static str,
    side: Side,
    g: Array<F, DO>,
    a: ArrayView<'_, F, DA>,
    b: ArrayView<'_, F, DB>,
    f: impl Fn(F, F, F) -> F,
) -> Result<Array<F, DT>> {
    if a.shape() != g.shape() || b.shape() != g.shape() {
        let shape = broadcast_shape(op, a.shape(), b.shape())?;
        if shape.slice() != g.shape() {
            return Err(TapeError::ContributionShape {
                op,
                expected: shape.slice().to_vec(),
                got: g.shape().to_vec(),
                node: None,
            });
        }
    }
    let bad = || TapeError::shape(op, "shapes do not broadcast", a.shape(), b.shape());
    let a2 = a.broadcast(g.raw_dim()).ok_or_else(bad)?;
    let b2 = b.broadcast(g.raw_dim()).ok_or_else(bad)?;
    let mut g = g;
    g.update2(a2, b2, f);
    let target = match side {
        Side::Lhs => a.shape(),
        Side::Rhs => b.shape(),
    };
    sum_to(op, g, target)
}

/// `g` summed back to `target`, moved without a copy when the shapes already agree.
fn sum_to<F: Float, DO: Dimension, DT: Dimension>(
    op: &'static str,
    g: Array<F, DO>,
    target: &[usize],
) -> Result<Array<F, DT>> {
    if g.shape() == target {
        return into_dim(op, g);
    }
    if let Some(summed) = sum_leading_rows(g.view(), target) {
        return into_dim(op, summed);
    }
    into_dim(op, unbroadcast(g.into_dyn(), target)?)
}

/// [`sum_to`] of a borrowed `g`: a new array of `target`'s shape, without copying `g` first
/// when it is summed over leading rows (a bias).
fn sum_view_to<F: Float, DO: Dimension, DT: Dimension>(
    op: &'static str,
    g: ArrayView<'_, F, DO>,
    target: &[usize],
) -> Result<Array<F, DT>> {
    if g.shape() != target {
        if let Some(summed) = sum_leading_rows(g.view(), target) {
            return into_dim(op, summed);
        }
    }
    sum_to(op, g.to_owned(), target)
}

/// The common case of [`unbroadcast`] without dynamic-dimension overhead: `target` is a
/// suffix of `g`'s shape (a bias broadcast over a batch) and `g` is contiguous. Rows are
/// added in order, exactly as `sum_axis(Axis(0))` adds them.
fn sum_leading_rows<F: Float, D: Dimension>(
    g: ArrayView<'_, F, D>,
    target: &[usize],
) -> Option<ArrayD<F>> {
    let lead = g.ndim().checked_sub(target.len())?;
    if lead == 0 || g.shape()[lead..] != *target {
        return None;
    }
    let data = g.as_slice()?;
    let cols: usize = target.iter().product();
    let mut out = vec![F::zero(); cols];
    if cols > 0 {
        for row in data.chunks_exact(cols) {
            for (o, &v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
    }
    ArrayD::from_shape_vec(target, out).ok()
}

/// Two operands of an elementwise binary op, broadcast against each other.
///
/// `Out` is what ndarray's own operators give: a scalar for two scalars, otherwise an owned
/// array of the broadcast dimension.
pub trait Broadcast<B: Tensor<Elem = Self::Elem>>: Tensor {
    /// The result type.
    type Out: Value<Elem = Self::Elem>;

    /// `f(a, b)` over the broadcast shape.
    ///
    /// # Errors
    /// [`TapeError::Shape`] naming `op` when the shapes do not broadcast.
    fn zip_with(
        &self,
        b: &B,
        op: &'static str,
        f: impl Fn(Self::Elem, Self::Elem) -> Self::Elem,
    ) -> Result<Self::Out>;

    /// The contribution to `a` (`self`'s position) of a cotangent `g` of the result:
    /// `f(g, a, b)` over the broadcast shape, summed back to `a`'s shape.
    ///
    /// # Errors
    /// [`TapeError::Shape`] or [`TapeError::ContributionShape`] when the shapes do not fit.
    fn grad_lhs(
        g: Self::Out,
        a: &Self,
        b: &B,
        op: &'static str,
        f: impl Fn(Self::Elem, Self::Elem, Self::Elem) -> Self::Elem,
    ) -> Result<Self::Owned>;

    /// The contribution to `a` of `g` itself (as for `a + b`): `g` summed back to `a`'s shape,
    /// moved without a copy when no axis was broadcast.
    ///
    /// # Errors
    /// [`TapeError::ContributionShape`] when `g` does not fit.
    fn pass_lhs(g: Self::Out, a: &Self, op: &'static str) -> Result<Self::Owned>;

    /// The contribution to `b` of `g` itself: `g` summed back to `b`'s shape.
    ///
    /// # Errors
    /// [`TapeError::ContributionShape`] when `g` does not fit.
    fn pass_rhs(g: Self::Out, b: &B, op: &'static str) -> Result<B::Owned>;

    /// [`Broadcast::pass_rhs`] of a borrowed `g`, for when `a` takes `g` itself afterwards.
    ///
    /// # Errors
    /// As [`Broadcast::pass_rhs`].
    fn pass_rhs_ref(g: &Self::Out, b: &B, op: &'static str) -> Result<B::Owned>;

    /// The contribution to `b`: `f(g, a, b)` summed back to `b`'s shape.
    ///
    /// # Errors
    /// As [`Broadcast::grad_lhs`].
    fn grad_rhs(
        g: Self::Out,
        a: &Self,
        b: &B,
        op: &'static str,
        f: impl Fn(Self::Elem, Self::Elem, Self::Elem) -> Self::Elem,
    ) -> Result<B::Owned>;
}

/// The shared implementation for every pair that involves at least one array.
macro_rules! broadcast_via_views {
    ($b:ty) => {
        fn zip_with(
            &self,
            b: &$b,
            op: &'static str,
            f: impl Fn(Self::Elem, Self::Elem) -> Self::Elem,
        ) -> Result<Self::Out> {
            zip_views(op, self.as_view(), b.as_view(), f).map(Value::from_array)
        }

        fn grad_lhs(
            g: Self::Out,
            a: &Self,
            b: &$b,
            op: &'static str,
            f: impl Fn(Self::Elem, Self::Elem, Self::Elem) -> Self::Elem,
        ) -> Result<Self::Owned> {
            grad_views(op, Side::Lhs, g.into_array(), a.as_view(), b.as_view(), f)
                .map(Value::from_array)
        }

        fn grad_rhs(
            g: Self::Out,
            a: &Self,
            b: &$b,
            op: &'static str,
            f: impl Fn(Self::Elem, Self::Elem, Self::Elem) -> Self::Elem,
        ) -> Result<<$b as Tensor>::Owned> {
            grad_views(op, Side::Rhs, g.into_array(), a.as_view(), b.as_view(), f)
                .map(Value::from_array)
        }

        fn pass_lhs(g: Self::Out, a: &Self, op: &'static str) -> Result<Self::Owned> {
            sum_to(op, g.into_array(), a.shape_of()).map(Value::from_array)
        }

        fn pass_rhs(g: Self::Out, b: &$b, op: &'static str) -> Result<<$b as Tensor>::Owned> {
            sum_to(op, g.into_array(), b.shape_of()).map(Value::from_array)
        }

        fn pass_rhs_ref(g: &Self::Out, b: &$b, op: &'static str) -> Result<<$b as Tensor>::Owned> {
            sum_view_to(op, g.as_view(), b.shape_of()).map(Value::from_array)
        }
    };
}

impl<F: Float> Broadcast<F> for F {
    type Out = F;

    fn zip_with(&self, b: &F, _op: &'static str, f: impl Fn(F, F) -> F) -> Result<F> {
        Ok(f(*self, *b))
    }

    fn grad_lhs(g: F, a: &F, b: &F, _op: &'static str, f: impl Fn(F, F, F) -> F) -> Result<F> {
        Ok(f(g, *a, *b))
    }

    fn grad_rhs(g: F, a: &F, b: &F, _op: &'static str, f: impl Fn(F, F, F) -> F) -> Result<F> {
        Ok(f(g, *a, *b))
    }

    fn pass_lhs(g: F, _a: &F, _op: &'static str) -> Result<F> {
        Ok(g)
    }

    fn pass_rhs(g: F, _b: &F, _op: &'static str) -> Result<F> {
        Ok(g)
    }

    fn pass_rhs_ref(g: &F, _b: &F, _op: &'static str) -> Result<F> {
        Ok(*g)
    }
}

impl<F: Float, S: Data<Elem = F>, D: Dimension> Broadcast<ArrayBase<S, D>> for F {
    type Out = Array<F, D>;
    broadcast_via_views!(ArrayBase<S, D>);
}

impl<F: Float, S: Data<Elem = F>, D: Dimension> Broadcast<F> for ArrayBase<S, D> {
    type Out = Array<F, D>;
    broadcast_via_views!(F);
}

impl<F, SA, SB, DA, DB> Broadcast<ArrayBase<SB, DB>> for ArrayBase<SA, DA>
where
    F: Float,
    SA: Data<Elem = F>,
    SB: Data<Elem = F>,
    DA: Dimension + DimMax<DB>,
    DB: Dimension,
{
    type Out = Array<F, <DA as DimMax<DB>>::Output>;
    broadcast_via_views!(ArrayBase<SB, DB>);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, array};

    #[test]
    fn broadcast_shape_follows_numpy() {
        assert_eq!(
            broadcast_shape("add", &[4, 3], &[3]).unwrap().slice(),
            [4, 3]
        );
        assert_eq!(
            broadcast_shape("add", &[4, 1], &[1, 5]).unwrap().slice(),
            [4, 5]
        );
        assert_eq!(
            broadcast_shape("add", &[], &[2, 2]).unwrap().slice(),
            [2, 2]
        );
        let err = broadcast_shape("add", &[4, 3], &[4]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "add: shapes do not broadcast: [4, 3] and [4]"
        );
    }

    #[test]
    fn unbroadcast_sums_leading_and_unit_axes() {
        let g = Array2::<f64>::ones((4, 3)).into_dyn();
        assert_eq!(
            unbroadcast(g.clone(), &[3]).unwrap(),
            Array1::from_elem(3, 4.0).into_dyn()
        );
        assert_eq!(
            unbroadcast(g.clone(), &[4, 1]).unwrap(),
            Array2::from_elem((4, 1), 3.0).into_dyn()
        );
        assert_eq!(
            unbroadcast(g.clone(), &[]).unwrap(),
            ndarray::arr0(12.0).into_dyn()
        );
        assert!(unbroadcast(g, &[2]).is_err());
    }

    #[test]
    fn zip_and_grads_have_operand_shapes() {
        let a = array![[1.0_f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let b = array![10.0_f64, 20.0, 30.0];
        let out = a.zip_with(&b, "add", |x, y| x + y).unwrap();
        assert_eq!(out, array![[11.0, 22.0, 33.0], [14.0, 25.0, 36.0]]);
        let g = Array2::<f64>::ones((2, 3));
        let gb = <Array2<f64> as Broadcast<Array1<f64>>>::grad_rhs(g, &a, &b, "add", |g, _, _| g)
            .unwrap();
        assert_eq!(gb, array![2.0, 2.0, 2.0]);
        let s = 2.0_f64;
        let gs =
            <f64 as Broadcast<Array2<f64>>>::grad_lhs(a.clone(), &s, &a, "mul", |g, _, y| g * y)
                .unwrap();
        assert_eq!(gs, 91.0);
    }
}
