//! The typed values tape computes with: scalars (`f32`, `f64`) and `ndarray` arrays.
//!
//! [`Tensor`] is anything an op can read (a scalar, an owned array, a view);
//! [`Value`] is what an op produces and what a gradient is (a scalar or an owned `Array`).
//! Generated code is written against these two traits, so one kernel serves scalars and arrays
//! of every dimension, and the fast path never boxes a value.

use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::fuse::{LANES, Strip};
use ndarray::{Array, ArrayBase, ArrayView, Data, Dimension, Ix0, Zip};
use std::fmt::Debug;

/// A scalar or an array an op can read.
pub trait Tensor {
    /// The element type.
    type Elem: Float;
    /// The dimension type (`Ix0` for a scalar).
    type Dim: Dimension;
    /// The owned value of the same element type and dimension: the scalar itself, or `Array`.
    type Owned: Value<Elem = Self::Elem, Dim = Self::Dim>;

    /// A read-only view (a 0-d view for a scalar; never copies).
    fn as_view(&self) -> ArrayView<'_, Self::Elem, Self::Dim>;

    /// The shape (`[]` for a scalar).
    fn shape_of(&self) -> &[usize];

    /// An owned copy.
    fn to_value(&self) -> Self::Owned;
}

/// An owned scalar or array: what ops return and what gradients are.
pub trait Value: Tensor<Owned = Self> + Clone + Debug {
    /// Wraps an owned array (a 0-d array becomes the scalar).
    fn from_array(array: Array<Self::Elem, Self::Dim>) -> Self;

    /// Unwraps into an owned array (a scalar becomes a 0-d array).
    fn into_array(self) -> Array<Self::Elem, Self::Dim>;

    /// `f` applied to every element of a view of the same dimension.
    fn map_view(
        view: ArrayView<'_, Self::Elem, Self::Dim>,
        f: impl FnMut(Self::Elem) -> Self::Elem,
    ) -> Self;

    /// Zeros of the same shape.
    fn zeros_like(&self) -> Self;

    /// `f` applied to every element in place, a strip of [`LANES`] contiguous elements at a
    /// time through `strip`, which computes on a strip what `f` does on each element (as
    /// [`fuse::tanh_shared`](crate::fuse::tanh_shared) does `tanh`); `f` for the rest, and
    /// for every element of an array not contiguous in memory.
    fn map_strips_mut(
        &mut self,
        strip: impl Fn(&Strip<Self::Elem>) -> Strip<Self::Elem>,
        f: impl Fn(Self::Elem) -> Self::Elem,
    );

    /// `self[i] = f(self[i])`.
    fn map_mut(&mut self, f: impl FnMut(Self::Elem) -> Self::Elem);

    /// A value of the same shape as `like`, every element `fill`.
    fn filled_like<T: Tensor<Elem = Self::Elem, Dim = Self::Dim>>(
        like: &T,
        fill: Self::Elem,
    ) -> Self;

    /// `self[i] = f(self[i], x[i])`. The shapes must be equal (checked by the caller).
    fn update(
        &mut self,
        x: ArrayView<'_, Self::Elem, Self::Dim>,
        f: impl FnMut(Self::Elem, Self::Elem) -> Self::Elem,
    );

    /// `self[i] = f(self[i], x[i], y[i])`. The shapes must be equal (checked by the caller).
    fn update2(
        &mut self,
        x: ArrayView<'_, Self::Elem, Self::Dim>,
        y: ArrayView<'_, Self::Elem, Self::Dim>,
        f: impl FnMut(Self::Elem, Self::Elem, Self::Elem) -> Self::Elem,
    );

    /// `self += other`, elementwise, where both have the same shape.
    ///
    /// # Errors
    /// [`TapeError::ContributionShape`] (op `"accumulate"`) when the shapes differ; nothing is
    /// broadcast.
    fn add_assign_same(&mut self, other: &Self) -> Result<()> {
        if self.shape_of() != other.shape_of() {
            return Err(TapeError::ContributionShape {
                op: "accumulate",
                expected: self.shape_of().to_vec(),
                got: other.shape_of().to_vec(),
                node: None,
            });
        }
        self.update(other.as_view(), |a, b| a + b);
        Ok(())
    }
}

impl<F: Float> Tensor for F {
    type Elem = F;
    type Dim = Ix0;
    type Owned = F;

    fn as_view(&self) -> ArrayView<'_, F, Ix0> {
        ndarray::aview0(self)
    }

    fn shape_of(&self) -> &[usize] {
        &[]
    }

    fn to_value(&self) -> F {
        *self
    }
}

impl<F: Float> Value for F {
    fn from_array(array: Array<F, Ix0>) -> F {
        array.into_scalar()
    }

    fn into_array(self) -> Array<F, Ix0> {
        ndarray::arr0(self)
    }

    fn map_view(view: ArrayView<'_, F, Ix0>, mut f: impl FnMut(F) -> F) -> F {
        f(view[()])
    }

    fn zeros_like(&self) -> F {
        F::zero()
    }

    fn map_mut(&mut self, mut f: impl FnMut(F) -> F) {
        *self = f(*self);
    }

    fn map_strips_mut(&mut self, _strip: impl Fn(&Strip<F>) -> Strip<F>, f: impl Fn(F) -> F) {
        *self = f(*self);
    }

    fn filled_like<T: Tensor<Elem = F, Dim = Ix0>>(_like: &T, fill: F) -> F {
        fill
    }

    fn update(&mut self, x: ArrayView<'_, F, Ix0>, mut f: impl FnMut(F, F) -> F) {
        *self = f(*self, x[()]);
    }

    fn add_assign_same(&mut self, other: &F) -> Result<()> {
        *self += *other;
        Ok(())
    }

    fn update2(
        &mut self,
        x: ArrayView<'_, F, Ix0>,
        y: ArrayView<'_, F, Ix0>,
        mut f: impl FnMut(F, F, F) -> F,
    ) {
        *self = f(*self, x[()], y[()]);
    }
}

impl<F: Float, S: Data<Elem = F>, D: Dimension> Tensor for ArrayBase<S, D> {
    type Elem = F;
    type Dim = D;
    type Owned = Array<F, D>;

    fn as_view(&self) -> ArrayView<'_, F, D> {
        self.view()
    }

    fn shape_of(&self) -> &[usize] {
        self.shape()
    }

    fn to_value(&self) -> Array<F, D> {
        self.to_owned()
    }
}

impl<F: Float, D: Dimension> Value for Array<F, D> {
    fn from_array(array: Array<F, D>) -> Self {
        array
    }

    fn into_array(self) -> Array<F, D> {
        self
    }

    fn map_view(view: ArrayView<'_, F, D>, f: impl FnMut(F) -> F) -> Self {
        view.mapv(f)
    }

    fn zeros_like(&self) -> Self {
        Array::zeros(self.raw_dim())
    }

    fn map_mut(&mut self, mut f: impl FnMut(F) -> F) {
        self.mapv_inplace(&mut f);
    }

    fn map_strips_mut(&mut self, strip: impl Fn(&Strip<F>) -> Strip<F>, f: impl Fn(F) -> F) {
        let Some(xs) = self.as_slice_memory_order_mut() else {
            self.mapv_inplace(f);
            return;
        };
        let mut strips = xs.chunks_exact_mut(LANES);
        for chunk in &mut strips {
            if let Ok(chunk) = <&mut Strip<F>>::try_from(chunk) {
                *chunk = strip(chunk);
            }
        }
        for x in strips.into_remainder() {
            *x = f(*x);
        }
    }

    fn filled_like<T: Tensor<Elem = F, Dim = D>>(like: &T, fill: F) -> Self {
        Array::from_elem(like.as_view().raw_dim(), fill)
    }

    fn update(&mut self, x: ArrayView<'_, F, D>, mut f: impl FnMut(F, F) -> F) {
        Zip::from(self).and(&x).for_each(|a, &x| *a = f(*a, x));
    }

    fn update2(
        &mut self,
        x: ArrayView<'_, F, D>,
        y: ArrayView<'_, F, D>,
        mut f: impl FnMut(F, F, F) -> F,
    ) {
        Zip::from(self)
            .and(&x)
            .and(&y)
            .for_each(|a, &x, &y| *a = f(*a, x, y));
    }
}

/// An argument of the prelude's plain op functions: a reference to a scalar or an array
/// (`tanh(&z)`, `tanh(x)` for `x: &Array1<f64>`), or a scalar by value (`tanh(0.5)`).
pub trait Input {
    /// The tensor read.
    type Tensor: Tensor;

    /// The tensor read.
    fn tensor(&self) -> &Self::Tensor;
}

impl<T: Tensor> Input for &T {
    type Tensor = T;

    fn tensor(&self) -> &T {
        self
    }
}

impl Input for f32 {
    type Tensor = f32;

    fn tensor(&self) -> &f32 {
        self
    }
}

impl Input for f64 {
    type Tensor = f64;

    fn tensor(&self) -> &f64 {
        self
    }
}

/// Checks that two shapes are equal; `what` says which operands for the message.
pub(crate) fn check_same_shape(
    op: &'static str,
    what: &'static str,
    lhs: &[usize],
    rhs: &[usize],
) -> Result<()> {
    if lhs == rhs {
        Ok(())
    } else {
        Err(TapeError::shape(op, what, lhs, rhs))
    }
}

/// Converts between dimension types whose ranks agree (a cheap, allocation-free move).
pub(crate) fn into_dim<F: Float, D1: Dimension, D2: Dimension>(
    op: &'static str,
    array: Array<F, D1>,
) -> Result<Array<F, D2>> {
    if D2::NDIM.is_some_and(|n| n != array.ndim()) {
        return Err(rank_mismatch(op, array.shape()));
    }
    array
        .into_dimensionality::<D2>()
        .map_err(|_| rank_mismatch(op, &[]))
}

/// Converts a view between dimension types whose ranks agree.
pub(crate) fn view_into_dim<'a, F: Float, D1: Dimension, D2: Dimension>(
    op: &'static str,
    view: ArrayView<'a, F, D1>,
) -> Result<ArrayView<'a, F, D2>> {
    if D2::NDIM.is_some_and(|n| n != view.ndim()) {
        return Err(rank_mismatch(op, view.shape()));
    }
    view.into_dimensionality::<D2>()
        .map_err(|_| rank_mismatch(op, &[]))
}

#[cold]
fn rank_mismatch(op: &'static str, shape: &[usize]) -> TapeError {
    TapeError::rank(op, "operand rank does not fit the dimension type", shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn scalars_and_arrays_share_one_interface() {
        let x = 2.0_f64;
        assert_eq!(x.shape_of(), &[] as &[usize]);
        assert_eq!(f64::map_view(x.as_view(), |v| v * 3.0), 6.0);
        let a = array![[1.0_f64, 2.0], [3.0, 4.0]];
        assert_eq!(a.shape_of(), &[2, 2]);
        let mut z = a.zeros_like();
        z.add_assign_same(&a).unwrap();
        assert_eq!(z, a);
    }

    #[test]
    fn add_assign_refuses_to_broadcast() {
        let mut a = array![1.0_f64, 2.0];
        let err = a.add_assign_same(&array![1.0_f64, 2.0, 3.0]).unwrap_err();
        assert!(matches!(err, TapeError::ContributionShape { .. }), "{err}");
    }
}
