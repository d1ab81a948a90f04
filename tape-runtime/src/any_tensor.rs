//! [`AnyTensor`]: a shape-erased tensor, for APIs that hold values of many shapes at once
//! (a tape's per-node cotangents, a recorded forward pass).

use crate::error::{Result, TapeError};
use crate::float::Float;
use ndarray::{Array, ArrayD, ArrayViewD, Dimension, IxDyn};
use std::fmt;

/// A tensor of any shape: an `ArrayD<F>` inside; a scalar is 0-dimensional.
#[derive(Clone, PartialEq)]
pub struct AnyTensor<F = f64> {
    array: ArrayD<F>,
}

impl<F: Float> AnyTensor<F> {
    /// Wraps an array of dynamic dimension.
    pub fn new(array: ArrayD<F>) -> Self {
        AnyTensor { array }
    }

    /// A 0-dimensional tensor holding `value`.
    pub fn scalar(value: F) -> Self {
        AnyTensor {
            array: ndarray::arr0(value).into_dyn(),
        }
    }

    /// Zeros of the given shape (`&[]` for a scalar).
    pub fn zeros(shape: &[usize]) -> Self {
        AnyTensor {
            array: ArrayD::zeros(IxDyn(shape)),
        }
    }

    /// The shape (`[]` for a scalar).
    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    /// A read-only view.
    pub fn view(&self) -> ArrayViewD<'_, F> {
        self.array.view()
    }

    /// The array inside.
    pub fn into_array(self) -> ArrayD<F> {
        self.array
    }

    /// The array inside, by reference.
    pub fn as_array(&self) -> &ArrayD<F> {
        &self.array
    }

    /// The value of a 0-dimensional tensor; `None` for any other shape.
    pub fn to_scalar(&self) -> Option<F> {
        if self.array.ndim() == 0 {
            self.array.first().copied()
        } else {
            None
        }
    }

    /// The array with a static dimension type, e.g. `Ix2`.
    ///
    /// # Errors
    /// [`TapeError::Rank`] when the tensor's rank differs from `D`'s.
    pub fn into_dimensionality<D: Dimension>(self) -> Result<Array<F, D>> {
        let shape = self.array.shape().to_vec();
        self.array.into_dimensionality::<D>().map_err(|_| {
            TapeError::rank(
                "into_dimensionality",
                "rank differs from the requested dimension",
                &shape,
            )
        })
    }

    /// The elementwise sum of two tensors of the same shape (nothing is broadcast).
    ///
    /// # Errors
    /// [`TapeError::ContributionShape`] when the shapes differ.
    pub fn add(&self, other: &AnyTensor<F>) -> Result<AnyTensor<F>> {
        let mut sum = self.clone();
        sum.add_assign(other)?;
        Ok(sum)
    }

    /// `self += other`, in place, for tensors of the same shape (nothing is broadcast).
    ///
    /// # Errors
    /// [`TapeError::ContributionShape`] when the shapes differ.
    pub fn add_assign(&mut self, other: &AnyTensor<F>) -> Result<()> {
        if self.shape() != other.shape() {
            return Err(TapeError::ContributionShape {
                op: "add",
                expected: self.shape().to_vec(),
                got: other.shape().to_vec(),
                node: None,
            });
        }
        self.array += &other.array;
        Ok(())
    }
}

impl<F: Float> fmt::Debug for AnyTensor<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.to_scalar() {
            write!(f, "AnyTensor({v:?})")
        } else {
            write!(
                f,
                "AnyTensor(shape {:?}, {:?})",
                self.shape(),
                self.array.as_slice_memory_order()
            )
        }
    }
}

impl<F: Float> fmt::Display for AnyTensor<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.array, f)
    }
}

impl<F: Float, D: Dimension> From<Array<F, D>> for AnyTensor<F> {
    fn from(array: Array<F, D>) -> Self {
        AnyTensor {
            array: array.into_dyn(),
        }
    }
}

impl From<f64> for AnyTensor<f64> {
    fn from(value: f64) -> Self {
        AnyTensor::scalar(value)
    }
}

impl From<f32> for AnyTensor<f32> {
    fn from(value: f32) -> Self {
        AnyTensor::scalar(value)
    }
}

/// A recorded forward value: scalars, arrays and integer inputs become [`AnyTensor`]s
/// (integers as float scalars, for display; they never take part in a VJP).
pub trait Record<F> {
    /// The value as a shape-erased tensor.
    fn record(&self) -> AnyTensor<F>;
}

impl<F: Float> Record<F> for F {
    fn record(&self) -> AnyTensor<F> {
        AnyTensor::scalar(*self)
    }
}

impl<F: Float, S: ndarray::Data<Elem = F>, D: Dimension> Record<F> for ndarray::ArrayBase<S, D> {
    fn record(&self) -> AnyTensor<F> {
        AnyTensor::new(self.to_owned().into_dyn())
    }
}

impl<F: Float> Record<F> for bool {
    fn record(&self) -> AnyTensor<F> {
        AnyTensor::scalar(if *self { F::one() } else { F::zero() })
    }
}

/// `Some(value.record())`, with the element type named: what generated code calls.
pub fn record<F, T: Record<F> + ?Sized>(value: &T) -> Option<AnyTensor<F>> {
    Some(value.record())
}

/// The recording of a value that exists only where a branch arm ran.
pub fn record_opt<F, T: Record<F>>(value: &Option<T>) -> Option<AnyTensor<F>> {
    value.as_ref().map(Record::record)
}

/// A recorded node's value, for generated VJP code.
///
/// # Errors
/// [`TapeError::NotEvaluated`] for a node in an arm that did not run (the generated code
/// attaches the node).
pub fn evaluated<F>(values: &[Option<AnyTensor<F>>], id: usize) -> Result<&AnyTensor<F>> {
    values
        .get(id)
        .and_then(Option::as_ref)
        .ok_or(TapeError::NotEvaluated {
            node: crate::error::NodeLabel { id, name: None },
        })
}

macro_rules! record_integers {
    ($($int:ty),*) => {$(
        impl<F: Float> Record<F> for $int {
            #[allow(clippy::cast_precision_loss)]
            fn record(&self) -> AnyTensor<F> {
                AnyTensor::scalar(F::from_f64(*self as f64))
            }
        }
    )*};
}

record_integers!(
    i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize
);

/// The value of a 0-dimensional tensor, for ops whose cotangent is a scalar.
///
/// # Errors
/// [`TapeError::Rank`] naming `op` when the tensor is not 0-dimensional.
pub fn scalar_of<F: Float>(op: &'static str, tensor: &AnyTensor<F>) -> Result<F> {
    tensor
        .to_scalar()
        .ok_or_else(|| TapeError::rank(op, "expects a scalar cotangent", tensor.shape()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Ix2, array};

    #[test]
    fn scalars_are_zero_dimensional() {
        let s = AnyTensor::scalar(2.5);
        assert_eq!(s.shape(), &[] as &[usize]);
        assert_eq!(s.to_scalar(), Some(2.5));
        assert_eq!(AnyTensor::from(2.5), s);
        assert_eq!(AnyTensor::<f64>::from(array![1.0]).to_scalar(), None);
    }

    #[test]
    fn add_requires_equal_shapes() {
        let a = AnyTensor::from(array![[1.0, 2.0]]);
        assert_eq!(a.add(&a).unwrap(), AnyTensor::from(array![[2.0, 4.0]]));
        assert!(a.add(&AnyTensor::zeros(&[2])).is_err());
        assert_eq!(
            a.clone().into_dimensionality::<Ix2>().unwrap(),
            array![[1.0, 2.0]]
        );
        assert!(a.into_dimensionality::<ndarray::Ix1>().is_err());
    }
}
