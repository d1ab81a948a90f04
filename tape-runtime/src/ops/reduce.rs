//! Reductions: `sum`, `mean` (to a scalar) and `sum_axis`, `mean_axis` (one axis removed).
//!
//! Each VJP broadcasts the cotangent back over the reduced elements; the means divide by the
//! number of elements reduced.

use crate::accumulate::Acc;
use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::tensor::Tensor;
use crate::tensor::{check_same_shape, into_dim};
use ndarray::{Array, ArrayBase, Axis, Data, Dimension, RemoveAxis};

fn check_axis(op: &'static str, shape: &[usize], axis: Axis) -> Result<()> {
    if axis.index() < shape.len() {
        Ok(())
    } else {
        Err(TapeError::axis(op, axis.index(), shape))
    }
}

fn check_nonempty(op: &'static str, len: usize, shape: &[usize]) -> Result<()> {
    if len > 0 {
        Ok(())
    } else {
        Err(TapeError::domain(
            op,
            format!("the mean of no elements (shape {shape:?})"),
        ))
    }
}

/// `y = Σᵢ xᵢ`. PyTorch `x.sum()`, JAX `jnp.sum(x)`.
///
/// ```
/// # use tape_runtime::ops::reduce::sum;
/// # use ndarray::array;
/// assert_eq!(sum(&array![1.0, 2.0, 3.0]).unwrap(), 6.0);
/// ```
///
/// # Errors
/// Never.
pub fn sum<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Result<F> {
    Ok(x.sum())
}

/// VJP of [`sum`]: `x̄ᵢ = ȳ`.
///
/// # Errors
/// Never.
pub fn sum_vjp<F: Float, S: Data<Elem = F>, D: Dimension>(
    g: F,
    x: &ArrayBase<S, D>,
    _y: &F,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()> {
    dx.put_with(|| Ok(Array::from_elem(x.raw_dim(), g)))
}

/// `y = (1/n) Σᵢ xᵢ`. PyTorch `x.mean()`, JAX `jnp.mean(x)`; ndarray's `mean()` returns it as an `Option`.
///
/// ```
/// # use tape_runtime::ops::reduce::mean;
/// # use ndarray::array;
/// assert_eq!(mean(&array![1.0, 2.0, 3.0]).unwrap(), 2.0);
/// ```
///
/// # Errors
/// [`TapeError::Domain`] for an empty array.
pub fn mean<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Result<F> {
    check_nonempty("mean", x.len(), x.shape())?;
    Ok(x.sum() / F::from_usize(x.len()))
}

/// VJP of [`mean`]: `x̄ᵢ = ȳ / n`.
///
/// # Errors
/// Never.
pub fn mean_vjp<F: Float, S: Data<Elem = F>, D: Dimension>(
    g: F,
    x: &ArrayBase<S, D>,
    _y: &F,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()> {
    dx.put_with(|| {
        Ok(Array::from_elem(
            x.raw_dim(),
            g / F::from_usize(x.len().max(1)),
        ))
    })
}

/// `y = Σₖ x[…, k, …]` along `axis`, which is removed. PyTorch `x.sum(dim=k)`, JAX `jnp.sum(x, axis=k)`.
///
/// ```
/// # use tape_runtime::ops::reduce::sum_axis;
/// # use ndarray::{array, Axis};
/// assert_eq!(sum_axis(&array![[1.0, 2.0], [3.0, 4.0]], Axis(1)).unwrap(), array![3.0, 7.0]);
/// ```
///
/// # Errors
/// [`TapeError::Axis`] when `axis` is out of range.
pub fn sum_axis<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    x: &ArrayBase<S, D>,
    axis: Axis,
) -> Result<Array<F, D::Smaller>> {
    check_axis("sum_axis", x.shape(), axis)?;
    Ok(x.sum_axis(axis))
}

/// `ȳ` reinserted along `axis` and broadcast to `x`'s shape, times `scale`.
fn spread<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    op: &'static str,
    g: Array<F, D::Smaller>,
    x: &ArrayBase<S, D>,
    axis: Axis,
    scale: F,
) -> Result<Array<F, D>> {
    check_axis(op, x.shape(), axis)?;
    let mut expected = x.shape().to_vec();
    expected.remove(axis.index());
    check_same_shape(op, "cotangent and output differ", g.shape(), &expected)?;
    let g: Array<F, D> = into_dim(op, g.insert_axis(axis))?;
    let spread = g.broadcast(x.raw_dim()).ok_or_else(|| {
        TapeError::shape(
            op,
            "cotangent does not broadcast to the input",
            g.shape(),
            x.shape(),
        )
    })?;
    Ok(spread.mapv(|v| v * scale))
}

/// VJP of [`sum_axis`]: `x̄[…, k, …] = ȳ[…]` for every `k`.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn sum_axis_vjp<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    g: Array<F, D::Smaller>,
    x: &ArrayBase<S, D>,
    _y: &impl Tensor,
    axis: Axis,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()> {
    dx.put_with(|| spread("sum_axis", g, x, axis, F::one()))
}

/// `y = (1/n) Σₖ x[…, k, …]` along `axis` (of length `n`), which is removed.
/// PyTorch `x.mean(dim=k)`, JAX `jnp.mean(x, axis=k)`; ndarray's `mean_axis` returns it as an `Option`.
///
/// ```
/// # use tape_runtime::ops::reduce::mean_axis;
/// # use ndarray::{array, Axis};
/// assert_eq!(mean_axis(&array![[1.0, 2.0], [3.0, 4.0]], Axis(0)).unwrap(), array![2.0, 3.0]);
/// ```
///
/// # Errors
/// [`TapeError::Axis`] when `axis` is out of range, [`TapeError::Domain`] when it is empty.
pub fn mean_axis<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    x: &ArrayBase<S, D>,
    axis: Axis,
) -> Result<Array<F, D::Smaller>> {
    check_axis("mean_axis", x.shape(), axis)?;
    let n = x.len_of(axis);
    check_nonempty("mean_axis", n, x.shape())?;
    Ok(x.sum_axis(axis) / F::from_usize(n))
}

/// VJP of [`mean_axis`]: `x̄[…, k, …] = ȳ[…] / n`.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn mean_axis_vjp<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    g: Array<F, D::Smaller>,
    x: &ArrayBase<S, D>,
    _y: &impl Tensor,
    axis: Axis,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()> {
    dx.put_with(|| {
        check_axis("mean_axis", x.shape(), axis)?;
        let n = F::from_usize(x.len_of(axis).max(1));
        spread("mean_axis", g, x, axis, F::one() / n)
    })
}

/// `y = x[i]`: one element of a vector. PyTorch `x[i]`, JAX `x[i]`.
///
/// ```
/// # use tape_runtime::ops::reduce::index;
/// # use ndarray::array;
/// assert_eq!(index(&array![1.0, 2.0], 1).unwrap(), 2.0);
/// assert!(index(&array![1.0, 2.0], 2).is_err());
/// ```
///
/// # Errors
/// [`TapeError::Rank`] for an array that is not 1-d, [`TapeError::Axis`] when `i` is out of
/// bounds.
#[inline(always)]
pub fn index<F: Float, S: Data<Elem = F>, D: Dimension>(
    x: &ArrayBase<S, D>,
    i: usize,
) -> Result<F> {
    // A contiguous vector (the usual case) is read straight from its slice.
    match (x.ndim(), x.as_slice()) {
        (1, Some(slice)) => match slice.get(i) {
            Some(&value) => Ok(value),
            None => Err(*out_of_bounds(i, slice.len())),
        },
        _ => index_strided(x, i).map_err(|e| *e),
    }
}

/// [`index`] of a strided vector, or the error for an array that is not 1-d.
#[cold]
#[inline(never)]
fn index_strided<F: Float, S: Data<Elem = F>, D: Dimension>(
    x: &ArrayBase<S, D>,
    i: usize,
) -> std::result::Result<F, Box<TapeError>> {
    if x.ndim() != 1 {
        return Err(Box::new(TapeError::rank(
            "index",
            "indexes 1-d arrays",
            x.shape(),
        )));
    }
    match x.iter().nth(i) {
        Some(&value) => Ok(value),
        None => Err(out_of_bounds(i, x.len())),
    }
}

#[cold]
#[inline(never)]
fn out_of_bounds(i: usize, len: usize) -> Box<TapeError> {
    // Boxed, like every error of the inlined hot paths here: a small return keeps the
    // caller's `Result` out of memory.
    Box::new(TapeError::Domain {
        op: "index",
        what: format!("index {i} is out of bounds for length {len}"),
        node: None,
    })
}

/// VJP of [`index`]: `x̄[i] += ȳ`, in place (no full-size contribution is built).
///
/// # Errors
/// As [`index`].
#[inline(always)]
pub fn index_vjp<F: Float, S: Data<Elem = F>, D: Dimension>(
    g: F,
    x: &ArrayBase<S, D>,
    _y: &F,
    i: usize,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()> {
    let Some(slot) = dx.into_slot() else {
        return Ok(());
    };
    // The hot path: a contiguous total already there, and `i` in bounds.
    match slot
        .as_mut()
        .and_then(|total| total.as_slice_mut())
        .and_then(|total| total.get_mut(i))
    {
        Some(v) => {
            *v += g;
            Ok(())
        }
        None => index_vjp_slow(g, x, i, slot).map_err(|e| *e),
    }
}

/// [`index_vjp`] when the total is not there yet (the first `x[j]` of a sweep), is strided,
/// or `i` is out of bounds.
#[cold]
#[inline(never)]
fn index_vjp_slow<F: Float, S: Data<Elem = F>, D: Dimension>(
    g: F,
    x: &ArrayBase<S, D>,
    i: usize,
    slot: &mut Option<Array<F, D>>,
) -> std::result::Result<(), Box<TapeError>> {
    if x.ndim() != 1 || i >= x.len() {
        return index(x, i).map(|_| ()).map_err(Box::new);
    }
    let total = slot.get_or_insert_with(|| Array::zeros(x.raw_dim()));
    check_same_shape(
        "index",
        "gradient and input differ",
        total.shape(),
        x.shape(),
    )
    .map_err(Box::new)?;
    if let Some(v) = total.iter_mut().nth(i) {
        *v += g;
    }
    Ok(())
}

/// [`index_vjp`] into a gradient total kept as plain elements, the way `_grad` collects every
/// `x[i]` of one vector before adding them to `x`'s gradient in one step: `total[i] += ḡ`.
///
/// # Errors
/// [`TapeError::Domain`] if `i` is out of bounds (the forward `index` has already refused it).
#[inline(always)]
pub fn index_add<F: Float>(total: &mut [F], i: usize, g: F) -> Result<()> {
    let len = total.len();
    match total.get_mut(i) {
        Some(v) => {
            *v += g;
            Ok(())
        }
        None => Err(*out_of_bounds(i, len)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_fd1, det};
    use super::*;
    use ndarray::{Array2, array};

    #[test]
    fn reductions_analytic() {
        let x = array![[1.0_f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
        // Σ: x̄ = ȳ everywhere.  mean: x̄ = ȳ/6.
        let mut d = None;
        sum_vjp(2.0, &x, &21.0, Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(Array2::from_elem((2, 3), 2.0)));
        let mut d = None;
        mean_vjp(6.0, &x, &3.5, Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(Array2::from_elem((2, 3), 1.0)));
        // sum over rows: x̄[i, j] = ȳ[j].  mean over columns: x̄[i, j] = ȳ[i]/3.
        let y = sum_axis(&x, Axis(0)).unwrap();
        assert_eq!(y, array![5.0, 7.0, 9.0]);
        let mut d = None;
        sum_axis_vjp(array![1.0, 2.0, 3.0], &x, &y, Axis(0), Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(array![[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]));
        let y = mean_axis(&x, Axis(1)).unwrap();
        assert_eq!(y, array![2.0, 5.0]);
        let mut d = None;
        mean_axis_vjp(array![3.0, 6.0], &x, &y, Axis(1), Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(array![[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]));
    }

    fn scalar_fd(
        what: &str,
        f: fn(&ndarray::ArrayD<f64>) -> Result<f64>,
        vjp: super::super::testing::ReduceVjp,
    ) {
        let x = det(&[3, 4], 5, -1.0, 1.0);
        let y = f(&x).unwrap();
        let mut d = None;
        vjp(0.7, &x, &y, Acc::to(&mut d)).unwrap();
        let numeric = crate::gradcheck::numeric_gradient(|x| 0.7 * f(x).unwrap(), &x, 1e-5);
        crate::gradcheck::assert_grad_close(what, &d.unwrap(), &numeric, 1e-8);
    }

    #[test]
    fn reduction_vjps_match_fd() {
        scalar_fd("sum", sum, sum_vjp);
        scalar_fd("mean", mean, mean_vjp);
        let x = det(&[3, 4, 2], 6, -1.0, 1.0);
        check_fd1(
            "sum_axis(0)",
            |x| sum_axis(x, Axis(0)),
            |g, x, y, d| sum_axis_vjp(g, x, y, Axis(0), d),
            &x,
            1e-8,
        );
        check_fd1(
            "sum_axis(1)",
            |x| sum_axis(x, Axis(1)),
            |g, x, y, d| sum_axis_vjp(g, x, y, Axis(1), d),
            &x,
            1e-8,
        );
        check_fd1(
            "mean_axis",
            |x| mean_axis(x, Axis(2)),
            |g, x, y, d| mean_axis_vjp(g, x, y, Axis(2), d),
            &x,
            1e-8,
        );
    }

    #[test]
    fn index_gradient_is_one_hot_and_accumulates_in_place() {
        // y = x[1]: x̄ = e₁·ȳ; two uses add up without a dense contribution.
        let x = array![1.0_f64, 2.0, 3.0];
        assert_eq!(index(&x, 1).unwrap(), 2.0);
        let mut d = None;
        index_vjp(0.5, &x, &2.0, 1, Acc::to(&mut d)).unwrap();
        index_vjp(2.0, &x, &3.0, 2, Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(array![0.0, 0.5, 2.0]));
        assert!(index(&x, 3).is_err());
        assert!(index(&Array2::<f64>::zeros((2, 2)), 0).is_err());
        assert!(index_vjp(1.0, &x, &0.0, 3, Acc::to(&mut d)).is_err());
    }

    #[test]
    fn index_of_a_strided_vector() {
        // Every other element, backwards: [5, 3, 1].
        let base = array![1.0_f64, 2.0, 3.0, 4.0, 5.0];
        let mut x = base.view();
        x.slice_axis_inplace(Axis(0), ndarray::Slice::new(0, None, -2));
        assert_eq!(index(&x, 0).unwrap(), 5.0);
        assert_eq!(index(&x, 2).unwrap(), 1.0);
        assert!(index(&x, 3).is_err());
        let mut d = None;
        index_vjp(0.5, &x, &5.0, 0, Acc::to(&mut d)).unwrap();
        index_vjp(2.0, &x, &1.0, 2, Acc::to(&mut d)).unwrap();
        index_vjp(1.0, &x, &1.0, 2, Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(array![0.5, 0.0, 3.0]));
        // A total that does not have the input's shape is an error, not a wrong gradient.
        let mut wrong = Some(array![0.0, 0.0]);
        assert!(index_vjp(1.0, &x, &1.0, 2, Acc::to(&mut wrong)).is_err());
    }

    #[test]
    fn bad_axes_and_empty_means_are_errors() {
        let x = Array2::<f64>::zeros((2, 3));
        assert_eq!(
            sum_axis(&x, Axis(2)).unwrap_err().to_string(),
            "sum_axis: axis 2 is out of range for shape [2, 3]"
        );
        assert!(mean_axis(&x, Axis(5)).is_err());
        assert!(mean(&Array2::<f64>::zeros((0, 3))).is_err());
        assert!(mean_axis(&Array2::<f64>::zeros((2, 0)), Axis(1)).is_err());
    }
}
