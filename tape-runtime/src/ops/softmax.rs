//! The softmax family along the last axis: `softmax`, `log_softmax`, `logsumexp`.
//!
//! Every forward subtracts the lane's maximum first, so no `exp` overflows; the VJPs reuse
//! the recorded output rather than exponentiating again where they can.

use crate::accumulate::Acc;
use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::tensor::{Value, check_same_shape};
use ndarray::{
    Array, ArrayBase, ArrayView1, ArrayViewMut1, Axis, Data, Dimension, Ix1, Ix2, Ix3, Ix4, Ix5,
    Ix6, IxDyn, RemoveAxis, Zip,
};

fn last_axis(op: &'static str, shape: &[usize]) -> Result<Axis> {
    match shape.len() {
        0 => Err(TapeError::rank(
            op,
            "needs at least one axis (it works along the last)",
            shape,
        )),
        n => Ok(Axis(n - 1)),
    }
}

fn lane_max<F: Float>(lane: &ArrayView1<'_, F>) -> F {
    lane.fold(F::neg_infinity(), |m, &v| if v > m { v } else { m })
}

/// `ln Σ exp(lane)`, shifted by the lane's maximum (−∞ for an empty or all −∞ lane).
pub(crate) fn lane_logsumexp<F: Float>(lane: ArrayView1<'_, F>) -> F {
    let m = lane_max(&lane);
    if m == F::neg_infinity() {
        return m;
    }
    m + lane.fold(F::zero(), |s, &v| s + (v - m).exp()).ln()
}

/// `y = exp(x) / Σ exp(x)` along the last axis. PyTorch `torch.softmax(x, dim=-1)`, JAX `jax.nn.softmax(x)`.
///
/// ```
/// # use tape_runtime::ops::softmax::softmax;
/// # use ndarray::array;
/// assert_eq!(softmax(&array![0.0, 0.0]).unwrap(), array![0.5, 0.5]);
/// ```
///
/// # Errors
/// [`TapeError::Rank`] for a 0-d input.
pub fn softmax<F: Float, S: Data<Elem = F>, D: Dimension>(
    x: &ArrayBase<S, D>,
) -> Result<Array<F, D>> {
    let axis = last_axis("softmax", x.shape())?;
    let mut y = x.to_owned();
    for mut lane in y.lanes_mut(axis) {
        let m = lane_max(&lane.view());
        lane.mapv_inplace(|v| (v - m).exp());
        let total = lane.sum();
        lane.mapv_inplace(|v| v / total);
    }
    Ok(y)
}

/// VJP of [`softmax`]: `x̄ = y ⊙ (ḡ − ⟨ḡ, y⟩)` lane by lane.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn softmax_vjp<F: Float, S: Data<Elem = F>, D: Dimension>(
    g: Array<F, D>,
    x: &ArrayBase<S, D>,
    y: &Array<F, D>,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()> {
    dx.put_with(|| {
        let axis = last_axis("softmax", x.shape())?;
        check_same_shape(
            "softmax",
            "cotangent and input differ",
            g.shape(),
            x.shape(),
        )?;
        let mut g = g;
        Zip::from(g.lanes_mut(axis))
            .and(y.lanes(axis))
            .for_each(|mut g, y| {
                let inner = g.dot(&y);
                Zip::from(&mut g)
                    .and(&y)
                    .for_each(|g, &y| *g = y * (*g - inner));
            });
        Ok(g)
    })
}

/// `y = x − ln Σ exp(x)` along the last axis. PyTorch `torch.log_softmax(x, dim=-1)`, JAX `jax.nn.log_softmax(x)`.
///
/// ```
/// # use tape_runtime::ops::softmax::log_softmax;
/// # use ndarray::array;
/// let y = log_softmax(&array![0.0, 0.0]).unwrap();
/// assert!((y[1] + 2.0_f64.ln()).abs() < 1e-15);
/// ```
///
/// # Errors
/// [`TapeError::Rank`] for a 0-d input.
pub fn log_softmax<F: Float, S: Data<Elem = F>, D: Dimension>(
    x: &ArrayBase<S, D>,
) -> Result<Array<F, D>> {
    let axis = last_axis("log_softmax", x.shape())?;
    let mut y = x.to_owned();
    for mut lane in y.lanes_mut(axis) {
        let lse = lane_logsumexp(lane.view());
        lane.mapv_inplace(|v| v - lse);
    }
    Ok(y)
}

/// VJP of [`log_softmax`]: `x̄ = ḡ − exp(y)·Σḡ` lane by lane (`exp(y)` is the softmax).
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn log_softmax_vjp<F: Float, S: Data<Elem = F>, D: Dimension>(
    g: Array<F, D>,
    x: &ArrayBase<S, D>,
    y: &Array<F, D>,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()> {
    dx.put_with(|| {
        let axis = last_axis("log_softmax", x.shape())?;
        check_same_shape(
            "log_softmax",
            "cotangent and input differ",
            g.shape(),
            x.shape(),
        )?;
        let mut g = g;
        Zip::from(g.lanes_mut(axis)).and(y.lanes(axis)).for_each(
            |mut g: ArrayViewMut1<'_, F>, y| {
                let total = g.sum();
                Zip::from(&mut g)
                    .and(&y)
                    .for_each(|g, &y| *g -= y.exp() * total);
            },
        );
        Ok(g)
    })
}

/// Arrays `logsumexp` accepts, with its result type: one axis fewer, and a scalar for a
/// vector.
pub trait LogSumExp: crate::tensor::Tensor {
    /// The result: the input without its last axis.
    type Reduced: Value<Elem = Self::Elem, Dim = <Self::Dim as Dimension>::Smaller>;
}

macro_rules! impl_logsumexp {
    ($($dim:ty => $reduced:ty),*) => {$(
        impl<F: Float, S: Data<Elem = F>> LogSumExp for ArrayBase<S, $dim> {
            type Reduced = $reduced;
        }
    )*};
}

impl_logsumexp!(
    Ix1 => F,
    Ix2 => Array<F, Ix1>,
    Ix3 => Array<F, Ix2>,
    Ix4 => Array<F, Ix3>,
    Ix5 => Array<F, Ix4>,
    Ix6 => Array<F, Ix5>,
    IxDyn => Array<F, IxDyn>
);

/// `y = ln Σ exp(x)` along the last axis, which is removed (a vector gives a scalar).
/// PyTorch `torch.logsumexp(x, dim=-1)`, JAX `jax.nn.logsumexp(x, axis=-1)`.
///
/// ```
/// # use tape_runtime::ops::softmax::logsumexp;
/// # use ndarray::array;
/// let y = logsumexp(&array![0.0, 0.0]).unwrap();
/// assert!((y - 2.0_f64.ln()).abs() < 1e-15);
/// ```
///
/// # Errors
/// [`TapeError::Rank`] for a 0-d input.
pub fn logsumexp<F, S, D>(x: &ArrayBase<S, D>) -> Result<<ArrayBase<S, D> as LogSumExp>::Reduced>
where
    F: Float,
    S: Data<Elem = F>,
    D: RemoveAxis,
    ArrayBase<S, D>: LogSumExp<Elem = F, Dim = D>,
{
    let axis = last_axis("logsumexp", x.shape())?;
    Ok(Value::from_array(x.map_axis(axis, lane_logsumexp)))
}

/// VJP of [`logsumexp`]: `x̄ = ȳ ⊙ exp(x − y)` (the softmax), `ȳ` and `y` broadcast along the
/// last axis.
///
/// # Errors
/// When `g` does not have the output's shape.
pub fn logsumexp_vjp<F, S, D>(
    g: <ArrayBase<S, D> as LogSumExp>::Reduced,
    x: &ArrayBase<S, D>,
    y: &<ArrayBase<S, D> as LogSumExp>::Reduced,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()>
where
    F: Float,
    S: Data<Elem = F>,
    D: RemoveAxis,
    ArrayBase<S, D>: LogSumExp<Elem = F, Dim = D, Owned = Array<F, D>>,
{
    dx.put_with(|| {
        let axis = last_axis("logsumexp", x.shape())?;
        let (g, y) = (g.into_array(), y.clone().into_array());
        let expected = &x.shape()[..axis.index()];
        check_same_shape(
            "logsumexp",
            "cotangent and output differ",
            g.shape(),
            expected,
        )?;
        let mut dx = x.to_owned();
        Zip::from(dx.lanes_mut(axis))
            .and(&g)
            .and(&y)
            .for_each(|mut lane, &g, &y| {
                lane.mapv_inplace(|v| g * (v - y).exp());
            });
        Ok(dx)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_fd1, det};
    use super::*;
    use ndarray::{ArrayD, array};

    #[test]
    fn softmax_family_analytic() {
        // softmax of equal logits is uniform; its VJP y ⊙ (ḡ − ⟨ḡ, y⟩) kills a constant ḡ.
        let x = array![[0.0_f64, 0.0], [1000.0, 1000.0]];
        let y = softmax(&x).unwrap();
        assert_eq!(y, array![[0.5, 0.5], [0.5, 0.5]]);
        let mut d = None;
        softmax_vjp(array![[1.0, 1.0], [2.0, 2.0]], &x, &y, Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(array![[0.0, 0.0], [0.0, 0.0]]));
        // logsumexp([0, 0]) = ln 2; its gradient is the softmax (½, ½).
        let v = array![0.0_f64, 0.0];
        let s = logsumexp(&v).unwrap();
        assert_eq!(s, 2.0_f64.ln());
        let mut d = None;
        logsumexp_vjp(1.0, &v, &s, Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(array![0.5, 0.5]));
        // log_softmax = x − logsumexp(x); for ḡ = e₀: x̄ = e₀ − softmax.
        let ls = log_softmax(&v).unwrap();
        let mut d = None;
        log_softmax_vjp(array![1.0, 0.0], &v, &ls, Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(array![0.5, -0.5]));
    }

    #[test]
    fn softmax_family_matches_fd() {
        let x = det(&[3, 5], 1, -3.0, 3.0);
        check_fd1("softmax", softmax, softmax_vjp, &x, 1e-8);
        check_fd1("log_softmax", log_softmax, log_softmax_vjp, &x, 1e-8);
        check_fd1("logsumexp", logsumexp, logsumexp_vjp, &x, 1e-8);
        let x3: ArrayD<f64> = det(&[2, 3, 4], 2, -3.0, 3.0);
        check_fd1("softmax 3-d", softmax, softmax_vjp, &x3, 1e-8);
    }

    #[test]
    fn large_logits_do_not_overflow() {
        let x = array![1000.0_f64, 0.0];
        assert_eq!(softmax(&x).unwrap(), array![1.0, 0.0]);
        assert_eq!(logsumexp(&x).unwrap(), 1000.0);
        assert_eq!(log_softmax(&x).unwrap()[0], 0.0);
        assert!(softmax(&ndarray::arr0(1.0_f64)).is_err());
    }
}
