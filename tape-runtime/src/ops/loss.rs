//! Losses: `mse` (mean squared error) and `cross_entropy` (softmax cross-entropy with a
//! one-hot or probability target, mean over the batch).

use super::softmax::lane_logsumexp;
use crate::accumulate::Acc;
use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::tensor::{Tensor, Value, check_same_shape};
use ndarray::{Array, ArrayBase, ArrayView, Axis, CowArray, Data, Dimension, Zip};
use num_traits::Zero;

/// `L = (1/N) Σᵢ (pᵢ − tᵢ)²` over all `N` elements. PyTorch `F.mse_loss(p, t)`, JAX `jnp.mean((p - t) ** 2)`.
///
/// ```
/// # use tape_runtime::ops::loss::mse;
/// # use ndarray::array;
/// assert_eq!(mse(&array![1.0, 3.0], &array![0.0, 0.0]).unwrap(), 5.0);
/// ```
///
/// # Errors
/// [`TapeError::Shape`] when `pred` and `target` differ in shape (nothing is broadcast);
/// [`TapeError::Domain`] when they are empty.
pub fn mse<A, B>(pred: &A, target: &B) -> Result<A::Elem>
where
    A: Tensor,
    B: Tensor<Elem = A::Elem, Dim = A::Dim>,
{
    check_same_shape(
        "mse",
        "prediction and target differ",
        pred.shape_of(),
        target.shape_of(),
    )?;
    let (p, t) = (pred.as_view(), target.as_view());
    if p.is_empty() {
        return Err(TapeError::domain("mse", "the mean of no elements".into()));
    }
    let total = Zip::from(&p)
        .and(&t)
        .fold(A::Elem::zero(), |s, &p, &t| s + (p - t) * (p - t));
    Ok(total / A::Elem::from_usize(p.len()))
}

/// VJP of [`mse`]: `p̄ = L̄·2/N·(p − t)`, `t̄ = −p̄`.
///
/// # Errors
/// When the shapes differ.
pub fn mse_vjp<A, B>(
    g: A::Elem,
    pred: &A,
    target: &B,
    _y: &A::Elem,
    dp: Acc<'_, A::Owned>,
    dt: Acc<'_, B::Owned>,
) -> Result<()>
where
    A: Tensor,
    B: Tensor<Elem = A::Elem, Dim = A::Dim>,
{
    check_same_shape(
        "mse",
        "prediction and target differ",
        pred.shape_of(),
        target.shape_of(),
    )?;
    let (p, t) = (pred.as_view(), target.as_view());
    let scale = g * A::Elem::from_f64(2.0) / A::Elem::from_usize(p.len().max(1));
    let (want_p, want_t) = (dp.wanted(), dt.wanted());
    if !(want_p || want_t) {
        return Ok(());
    }
    let grad = Zip::from(&p).and(&t).map_collect(|&p, &t| scale * (p - t));
    if want_t {
        dt.put(B::Owned::from_array(grad.mapv(|v| -v)))?;
    }
    dp.put(A::Owned::from_array(grad))
}

/// The number of rows a loss averages over: every axis but the last (the classes) is batch.
fn batch_and_classes(op: &'static str, shape: &[usize]) -> Result<(usize, usize)> {
    let Some((&classes, batch)) = shape.split_last() else {
        return Err(TapeError::rank(
            op,
            "needs at least one axis (classes are the last)",
            shape,
        ));
    };
    let rows: usize = batch.iter().product();
    if classes == 0 || rows == 0 {
        return Err(TapeError::domain(
            op,
            format!("no rows or no classes (shape {shape:?})"),
        ));
    }
    Ok((rows, classes))
}

/// The rows a cross-entropy averages over and the class axis, once the shapes are checked.
fn cross_entropy_layout(logits: &[usize], target: &[usize]) -> Result<(usize, Axis)> {
    check_same_shape("cross_entropy", "logits and target differ", logits, target)?;
    let (rows, _) = batch_and_classes("cross_entropy", logits)?;
    Ok((rows, Axis(logits.len() - 1)))
}

/// `L = −(1/B) Σ_b Σ_c t_bc · log_softmax(z)_bc`: softmax cross-entropy of `logits` against a
/// one-hot (or probability) `target` of the same shape, mean over the `B` rows. The last axis
/// holds the classes. PyTorch `F.cross_entropy(z, t)`, JAX `optax.softmax_cross_entropy(z, t).mean()` with probability targets.
///
/// ```
/// # use tape_runtime::ops::loss::cross_entropy;
/// # use ndarray::array;
/// let l = cross_entropy(&array![[0.0, 0.0]], &array![[1.0, 0.0]]).unwrap();
/// assert!((l - 2.0_f64.ln()).abs() < 1e-15);
/// ```
///
/// # Errors
/// [`TapeError::Shape`] when the shapes differ, [`TapeError::Rank`] for 0-d inputs,
/// [`TapeError::Domain`] when there are no rows or no classes.
pub fn cross_entropy<F, SA, SB, D>(
    logits: &ArrayBase<SA, D>,
    target: &ArrayBase<SB, D>,
) -> Result<F>
where
    F: Float,
    SA: Data<Elem = F>,
    SB: Data<Elem = F>,
    D: Dimension,
{
    let (rows, axis) = cross_entropy_layout(logits.shape(), target.shape())?;
    let mut total = F::zero();
    Zip::from(logits.lanes(axis))
        .and(target.lanes(axis))
        .for_each(|z, t| {
            let lse = lane_logsumexp(z);
            total -= Zip::from(&z)
                .and(&t)
                .fold(F::zero(), |s, &z, &t| s + t * (z - lse));
        });
    Ok(total / F::from_usize(rows))
}

/// VJP of [`cross_entropy`]: `z̄ = L̄/B·(softmax(z)·Σ_c t − t)` row by row (`softmax(z) − t`
/// for a one-hot target), `t̄ = −L̄/B·log_softmax(z)`.
///
/// # Errors
/// When the shapes differ.
pub fn cross_entropy_vjp<F, SA, SB, D>(
    g: F,
    logits: &ArrayBase<SA, D>,
    target: &ArrayBase<SB, D>,
    _y: &F,
    dz: Acc<'_, Array<F, D>>,
    dt: Acc<'_, Array<F, D>>,
) -> Result<()>
where
    F: Float,
    SA: Data<Elem = F>,
    SB: Data<Elem = F>,
    D: Dimension,
{
    cross_entropy_grads(g, CowArray::from(logits.view()), target, dz, dt)
}

/// [`cross_entropy_vjp`] with the logits by value, for logits nothing reads afterwards: `z̄`
/// is written into their buffer.
///
/// # Errors
/// As [`cross_entropy_vjp`].
pub fn cross_entropy_vjp_owned<F, SB, D>(
    g: F,
    logits: Array<F, D>,
    target: &ArrayBase<SB, D>,
    _y: &F,
    dz: Acc<'_, Array<F, D>>,
    dt: Acc<'_, Array<F, D>>,
) -> Result<()>
where
    F: Float,
    SB: Data<Elem = F>,
    D: Dimension,
{
    cross_entropy_grads(g, CowArray::from(logits), target, dz, dt)
}

/// `t̄ = −L̄/B·log_softmax(z)`.
fn target_grad<F: Float, D: Dimension>(
    g: F,
    logits: ArrayView<'_, F, D>,
    rows: usize,
    axis: Axis,
) -> Array<F, D> {
    let scale = g / F::from_usize(rows);
    let mut gt = logits.to_owned();
    for mut lane in gt.lanes_mut(axis) {
        let lse = lane_logsumexp(lane.view());
        lane.mapv_inplace(|z| -scale * (z - lse));
    }
    gt
}

/// Both contributions, `t̄` first, then `z̄` built in the logits' buffer where they are owned
/// (otherwise in a copy), lane by lane, without a zeroed buffer or a per-row allocation.
fn cross_entropy_grads<F, SB, D>(
    g: F,
    logits: CowArray<'_, F, D>,
    target: &ArrayBase<SB, D>,
    dz: Acc<'_, Array<F, D>>,
    dt: Acc<'_, Array<F, D>>,
) -> Result<()>
where
    F: Float,
    SB: Data<Elem = F>,
    D: Dimension,
{
    let (rows, axis) = cross_entropy_layout(logits.shape(), target.shape())?;
    let scale = g / F::from_usize(rows);
    if dt.wanted() {
        dt.put(target_grad(g, logits.view(), rows, axis))?;
    }
    if dz.wanted() {
        let mut gz = logits.into_owned();
        Zip::from(gz.lanes_mut(axis))
            .and(target.lanes(axis))
            .for_each(|mut lane, t| {
                let lse = lane_logsumexp(lane.view());
                let mass = t.sum();
                Zip::from(&mut lane)
                    .and(&t)
                    .for_each(|z, &t| *z = scale * ((*z - lse).exp() * mass - t));
            });
        dz.put(gz)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testing::det;
    use super::*;
    use crate::gradcheck::{assert_grad_close, numeric_gradient};
    use ndarray::{ArrayD, array};

    #[test]
    fn mse_analytic() {
        // L = mean((p − t)²): p̄ = 2/N·(p − t).
        let p = array![1.0_f64, 3.0];
        let t = array![0.0_f64, 1.0];
        let l = mse(&p, &t).unwrap();
        assert_eq!(l, 2.5);
        let (mut dp, mut dt) = (None, None);
        mse_vjp(1.0, &p, &t, &l, Acc::to(&mut dp), Acc::to(&mut dt)).unwrap();
        assert_eq!(dp, Some(array![1.0, 2.0]));
        assert_eq!(dt, Some(array![-1.0, -2.0]));
    }

    #[test]
    fn cross_entropy_analytic() {
        // Uniform logits over 2 classes: L = ln 2; z̄ = (softmax − t)/B = ((½,½) − e₀)/1.
        let z = array![[0.0_f64, 0.0]];
        let t = array![[1.0_f64, 0.0]];
        let l = cross_entropy(&z, &t).unwrap();
        assert!((l - 2.0_f64.ln()).abs() < 1e-15);
        let (mut dz, mut dt) = (None, None);
        cross_entropy_vjp(1.0, &z, &t, &l, Acc::to(&mut dz), Acc::to(&mut dt)).unwrap();
        assert_eq!(dz, Some(array![[-0.5, 0.5]]));
        assert_eq!(dt, Some(array![[2.0_f64.ln(), 2.0_f64.ln()]]));
    }

    #[test]
    fn cross_entropy_vjp_in_the_logits_buffer_matches() {
        let z = array![[0.3_f64, -1.2, 2.0], [0.1, 0.0, -0.7]];
        let t = array![[0.0_f64, 1.0, 0.0], [0.2, 0.3, 0.5]];
        let l = cross_entropy(&z, &t).unwrap();
        let (mut dz, mut dt) = (None, None);
        cross_entropy_vjp(0.7, &z, &t, &l, Acc::to(&mut dz), Acc::to(&mut dt)).unwrap();
        let (mut dz2, mut dt2) = (None, None);
        let owned = z.clone();
        cross_entropy_vjp_owned(0.7, owned, &t, &l, Acc::to(&mut dz2), Acc::to(&mut dt2)).unwrap();
        assert_eq!((dz, dt), (dz2, dt2));
    }

    fn check_loss_fd(
        what: &str,
        f: fn(&ArrayD<f64>, &ArrayD<f64>) -> Result<f64>,
        vjp: super::super::testing::LossVjp,
        a: &ArrayD<f64>,
        b: &ArrayD<f64>,
    ) {
        let y = f(a, b).unwrap();
        let (mut da, mut db) = (None, None);
        vjp(1.3, a, b, &y, Acc::to(&mut da), Acc::to(&mut db)).unwrap();
        let na = numeric_gradient(|a| 1.3 * f(a, b).unwrap(), a, 1e-5);
        let nb = numeric_gradient(|b| 1.3 * f(a, b).unwrap(), b, 1e-5);
        assert_grad_close(&format!("{what} (first)"), &da.unwrap(), &na, 1e-8);
        assert_grad_close(&format!("{what} (second)"), &db.unwrap(), &nb, 1e-8);
    }

    #[test]
    fn losses_match_fd() {
        let a = det(&[4, 3], 1, -2.0, 2.0);
        let b = det(&[4, 3], 2, 0.0, 1.0);
        check_loss_fd("mse", mse, mse_vjp, &a, &b);
        check_loss_fd("cross_entropy", cross_entropy, cross_entropy_vjp, &a, &b);
        check_loss_fd(
            "cross_entropy 1-d",
            cross_entropy,
            cross_entropy_vjp,
            &det(&[5], 3, -2.0, 2.0),
            &det(&[5], 4, 0.0, 1.0),
        );
    }

    #[test]
    fn mismatched_loss_shapes_are_errors() {
        let err = mse(&array![1.0_f64, 2.0], &array![1.0_f64, 2.0, 3.0]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "mse: prediction and target differ: [2] and [3]"
        );
        assert!(cross_entropy(&array![[1.0_f64, 2.0]], &array![[1.0_f64, 0.0, 0.0]]).is_err());
        assert!(
            cross_entropy(
                &ndarray::Array2::<f64>::zeros((0, 3)),
                &ndarray::Array2::<f64>::zeros((0, 3))
            )
            .is_err()
        );
    }
}
