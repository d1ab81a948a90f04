//! Elementwise unary ops on scalars and arrays of any dimension.
//!
//! Each VJP is `x̄ = ḡ ⊙ f′(x)`, written into `ḡ`'s buffer; where `f′` is cheaper from the
//! output (`exp`, `tanh`, `sigmoid`, `sqrt`) it reads the recorded output instead of
//! recomputing.

use super::{elem, unary_vjp};
use crate::accumulate::Acc;
use crate::error::{Result, TapeError};
use crate::tensor::{Tensor, Value};
use num_traits::Zero;

fn map<T: Tensor>(x: &T, f: impl FnMut(T::Elem) -> T::Elem) -> T::Owned {
    T::Owned::map_view(x.as_view(), f)
}

/// The multi-index of the `flat`-th element (row-major) of an array of shape `shape`.
pub(crate) fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &len) in shape.iter().enumerate().rev() {
        if len > 0 {
            index[i] = flat % len;
            flat /= len;
        }
    }
    index
}

/// `y = eˣ`, by [`math::exp`](crate::math::exp) (within 1 ulp, vectorizable). PyTorch
/// `torch.exp`, JAX `jnp.exp`.
///
/// ```
/// # use tape_runtime::ops::unary::exp;
/// assert_eq!(exp(&0.0_f64).unwrap(), 1.0);
/// ```
///
/// # Errors
/// Never.
pub fn exp<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::exp))
}

/// VJP of [`exp`]: `x̄ = ḡ·y`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn exp_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("exp", g, x, y, dx, elem::exp_vjp)
}

/// [`exp`] as `f64::exp` and ndarray's `exp` method compute it (libm): `x.exp()` in a
/// differentiable function, so that its gradient's value is exactly the function's.
///
/// # Errors
/// Never.
pub fn exp_std<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::exp_std))
}

/// VJP of [`exp_std`], as [`exp_vjp`].
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn exp_std_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    exp_vjp(g, x, y, dx)
}

/// `y = ln x`, defined for `x > 0`. PyTorch `torch.log`, JAX `jnp.log`.
///
/// ```
/// # use tape_runtime::ops::unary::ln;
/// assert_eq!(ln(&1.0_f64).unwrap(), 0.0);
/// assert!(ln(&0.0_f64).is_err());
/// ```
///
/// # Errors
/// [`TapeError::Domain`] naming the first non-positive element and its index.
pub fn ln<T: Tensor>(x: &T) -> Result<T::Owned> {
    let view = x.as_view();
    if let Some((i, v)) = view
        .iter()
        .enumerate()
        .find(|&(_, &v)| v <= T::Elem::zero())
    {
        return Err(TapeError::domain(
            "ln",
            format!(
                "non-positive input {v} at index {:?}",
                unravel(i, x.shape_of())
            ),
        ));
    }
    Ok(map(x, elem::ln))
}

/// VJP of [`ln`]: `x̄ = ḡ / x`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn ln_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("ln", g, x, y, dx, elem::ln_vjp)
}

/// `y = √x` (NaN for `x < 0`, as `f64::sqrt`). PyTorch `torch.sqrt`, JAX `jnp.sqrt`.
///
/// ```
/// # use tape_runtime::ops::unary::sqrt;
/// assert_eq!(sqrt(&9.0_f64).unwrap(), 3.0);
/// ```
///
/// # Errors
/// Never.
pub fn sqrt<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::sqrt))
}

/// VJP of [`sqrt`]: `x̄ = ḡ / (2y)` for `x > 0`, and `0` for `x ≤ 0` (a subgradient at 0
/// instead of ∞, and no NaN leaking out of the negative half-line).
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn sqrt_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("sqrt", g, x, y, dx, elem::sqrt_vjp)
}

/// `y = xⁿ` for an integer `n`. PyTorch `x ** n`, JAX `x ** n`.
///
/// ```
/// # use tape_runtime::ops::unary::powi;
/// assert_eq!(powi(&2.0_f64, 3).unwrap(), 8.0);
/// ```
///
/// # Errors
/// Never.
pub fn powi<T: Tensor>(x: &T, n: i32) -> Result<T::Owned> {
    Ok(map(x, |v| elem::powi(v, n)))
}

/// VJP of [`powi`]: `x̄ = ḡ·n·xⁿ⁻¹` (and `0` for `n = 0`).
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn powi_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    n: i32,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("powi", g, x, y, dx, move |g, x, y| {
        elem::powi_vjp(g, x, y, n)
    })
}

/// `y = xᶜ` for a constant real `c`. PyTorch `x ** c`, JAX `x ** c`.
///
/// ```
/// # use tape_runtime::ops::unary::powf;
/// assert_eq!(powf(&4.0_f64, 0.5).unwrap(), 2.0);
/// ```
///
/// # Errors
/// Never.
pub fn powf<T: Tensor>(x: &T, c: T::Elem) -> Result<T::Owned> {
    Ok(map(x, |v| elem::powf(v, c)))
}

/// VJP of [`powf`]: `x̄ = ḡ·c·xᶜ⁻¹` (and `0` for `c = 0`).
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn powf_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    c: T::Elem,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("powf", g, x, y, dx, move |g, x, y| {
        elem::powf_vjp(g, x, y, c)
    })
}

/// `y = |x|`. PyTorch `torch.abs`, JAX `jnp.abs`.
///
/// ```
/// # use tape_runtime::ops::unary::abs;
/// assert_eq!(abs(&-2.0_f64).unwrap(), 2.0);
/// ```
///
/// # Errors
/// Never.
pub fn abs<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::abs))
}

/// VJP of [`abs`]: `x̄ = ḡ·sign(x)`, with `abs′(0) = 0`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn abs_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("abs", g, x, y, dx, elem::abs_vjp)
}

/// `y = sin x`. PyTorch `torch.sin`, JAX `jnp.sin`.
///
/// ```
/// # use tape_runtime::ops::unary::sin;
/// assert_eq!(sin(&0.0_f64).unwrap(), 0.0);
/// ```
///
/// # Errors
/// Never.
pub fn sin<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::sin))
}

/// VJP of [`sin`]: `x̄ = ḡ·cos x`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn sin_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("sin", g, x, y, dx, elem::sin_vjp)
}

/// `y = cos x`. PyTorch `torch.cos`, JAX `jnp.cos`.
///
/// ```
/// # use tape_runtime::ops::unary::cos;
/// assert_eq!(cos(&0.0_f64).unwrap(), 1.0);
/// ```
///
/// # Errors
/// Never.
pub fn cos<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::cos))
}

/// VJP of [`cos`]: `x̄ = −ḡ·sin x`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn cos_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("cos", g, x, y, dx, elem::cos_vjp)
}

/// `y = tanh x`, by [`math::tanh`](crate::math::tanh) (within 2 ulp), a strip of
/// contiguous elements at a time ([`math::tanh_strip`](crate::math::tanh_strip)). PyTorch
/// `torch.tanh`, JAX `jnp.tanh`.
///
/// ```
/// # use tape_runtime::ops::unary::tanh;
/// assert_eq!(tanh(&0.0_f64).unwrap(), 0.0);
/// ```
///
/// # Errors
/// Never.
pub fn tanh<T: Tensor>(x: &T) -> Result<T::Owned> {
    let mut y = x.to_value();
    y.map_strips_mut(crate::fuse::tanh_shared, elem::tanh);
    Ok(y)
}

/// VJP of [`tanh`]: `x̄ = ḡ·(1 − y²)`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn tanh_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("tanh", g, x, y, dx, elem::tanh_vjp)
}

/// [`tanh`] as `f64::tanh` and ndarray's `tanh` method compute it (libm): `x.tanh()` in a
/// differentiable function.
///
/// # Errors
/// Never.
pub fn tanh_std<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::tanh_std))
}

/// VJP of [`tanh_std`], as [`tanh_vjp`].
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn tanh_std_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    tanh_vjp(g, x, y, dx)
}

/// `y = 1 / (1 + e⁻ˣ)`, computed without overflow for either sign. PyTorch `torch.sigmoid`, JAX `jax.nn.sigmoid`.
///
/// ```
/// # use tape_runtime::ops::unary::sigmoid;
/// assert_eq!(sigmoid(&0.0_f64).unwrap(), 0.5);
/// ```
///
/// # Errors
/// Never.
pub fn sigmoid<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::sigmoid))
}

/// VJP of [`sigmoid`]: `x̄ = ḡ·y·(1 − y)`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn sigmoid_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("sigmoid", g, x, y, dx, elem::sigmoid_vjp)
}

/// `y = max(x, 0)`. PyTorch `torch.relu`, JAX `jax.nn.relu`.
///
/// ```
/// # use tape_runtime::ops::unary::relu;
/// assert_eq!(relu(&-1.0_f64).unwrap(), 0.0);
/// ```
///
/// # Errors
/// Never.
pub fn relu<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::relu))
}

/// VJP of [`relu`]: `x̄ = ḡ` where `x > 0`, else `0` (`relu′(0) = 0`, as PyTorch).
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn relu_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("relu", g, x, y, dx, elem::relu_vjp)
}

/// `y = ln(1 + eˣ)`, computed as `max(x, 0) + ln(1 + e^−|x|)` so it neither overflows for
/// large `x` nor loses precision for very negative `x`. PyTorch `F.softplus`, JAX `jax.nn.softplus`.
///
/// ```
/// # use tape_runtime::ops::unary::softplus;
/// assert!((softplus(&0.0_f64).unwrap() - 2.0_f64.ln()).abs() < 1e-15);
/// ```
///
/// # Errors
/// Never.
pub fn softplus<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::softplus))
}

/// VJP of [`softplus`]: `x̄ = ḡ·σ(x)`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn softplus_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("softplus", g, x, y, dx, elem::softplus_vjp)
}

/// `y = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, the tanh form of GELU.
/// PyTorch `F.gelu(x, approximate="tanh")`, JAX `jax.nn.gelu(x, approximate=True)`.
///
/// ```
/// # use tape_runtime::ops::unary::gelu;
/// assert_eq!(gelu(&0.0_f64).unwrap(), 0.0);
/// ```
///
/// # Errors
/// Never.
pub fn gelu<T: Tensor>(x: &T) -> Result<T::Owned> {
    Ok(map(x, elem::gelu))
}

/// VJP of [`gelu`]: with `t = tanh(√(2/π)(x + 0.044715x³))`,
/// `x̄ = ḡ·(½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²))`.
///
/// # Errors
/// When `g` does not have `x`'s shape.
pub fn gelu_vjp<T: Tensor>(
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
) -> Result<()> {
    unary_vjp("gelu", g, x, y, dx, elem::gelu_vjp)
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_fd1, det, vjp1};
    use super::*;
    use ndarray::{Array1, Array2, Axis, Slice, array};

    fn grad_at(
        fwd: fn(&ndarray::ArrayD<f64>) -> Result<ndarray::ArrayD<f64>>,
        vjp: super::super::testing::Vjp1,
        x: Array1<f64>,
    ) -> Array1<f64> {
        let g = Array1::ones(x.len()).into_dyn();
        vjp1(fwd, vjp, &x.into_dyn(), &g)
            .into_dimensionality()
            .unwrap()
    }

    #[test]
    fn analytic_derivatives() {
        let x = array![0.5_f64, 2.0];
        // exp′ = exp
        assert_eq!(grad_at(exp, exp_vjp, x.clone()), x.mapv(f64::exp));
        // ln′ = 1/x
        assert_eq!(grad_at(ln, ln_vjp, x.clone()), array![2.0, 0.5]);
        // sqrt′ = 1/(2√x)
        assert_eq!(
            grad_at(sqrt, sqrt_vjp, array![4.0, 0.25]),
            array![0.25, 1.0]
        );
        // (x³)′ = 3x²
        assert_eq!(
            grad_at(
                |x| powi(x, 3),
                |g, x, y, d| powi_vjp(g, x, y, 3, d),
                x.clone()
            ),
            array![0.75, 12.0]
        );
        // (x^1.5)′ = 1.5·√x
        assert_eq!(
            grad_at(
                |x| powf(x, 1.5),
                |g, x, y, d| powf_vjp(g, x, y, 1.5, d),
                array![4.0, 1.0]
            ),
            array![3.0, 1.5]
        );
        // sin′ = cos, cos′ = −sin
        assert_eq!(grad_at(sin, sin_vjp, x.clone()), x.mapv(f64::cos));
        assert_eq!(grad_at(cos, cos_vjp, x.clone()), x.mapv(|v| -v.sin()));
        // tanh′ = 1 − tanh²
        assert_eq!(
            grad_at(tanh, tanh_vjp, x.clone()),
            x.mapv(|v| 1.0 - v.tanh().powi(2))
        );
        // σ′ = σ(1 − σ): σ(0) = ½ gives ¼
        assert_eq!(grad_at(sigmoid, sigmoid_vjp, array![0.0]), array![0.25]);
        // softplus′ = σ
        assert_eq!(grad_at(softplus, softplus_vjp, array![0.0]), array![0.5]);
        // gelu′(0) = ½
        assert_eq!(grad_at(gelu, gelu_vjp, array![0.0]), array![0.5]);
    }

    #[test]
    fn kinks_take_the_documented_subgradient() {
        // relu′(0) = 0, abs′(0) = 0, sqrt′(x ≤ 0) = 0.
        assert_eq!(
            grad_at(relu, relu_vjp, array![-1.0, 0.0, 2.0]),
            array![0.0, 0.0, 1.0]
        );
        assert_eq!(
            grad_at(abs, abs_vjp, array![-1.0, 0.0, 2.0]),
            array![-1.0, 0.0, 1.0]
        );
        assert_eq!(grad_at(sqrt, sqrt_vjp, array![-1.0, 0.0]), array![0.0, 0.0]);
        assert_eq!(
            grad_at(
                |x| powi(x, 0),
                |g, x, y, d| powi_vjp(g, x, y, 0, d),
                array![0.0]
            ),
            array![0.0]
        );
    }

    #[test]
    fn unary_vjps_match_fd() {
        let x = det(&[3, 4], 1, -2.0, 2.0);
        let pos = det(&[3, 4], 2, 0.2, 3.0);
        check_fd1("exp", exp, exp_vjp, &x, 1e-8);
        check_fd1("ln", ln, ln_vjp, &pos, 1e-7);
        check_fd1("sqrt", sqrt, sqrt_vjp, &pos, 1e-7);
        check_fd1(
            "powi",
            |x| powi(x, 3),
            |g, x, y, d| powi_vjp(g, x, y, 3, d),
            &x,
            1e-8,
        );
        check_fd1(
            "powi(-2)",
            |x| powi(x, -2),
            |g, x, y, d| powi_vjp(g, x, y, -2, d),
            &pos,
            1e-6,
        );
        check_fd1(
            "powf",
            |x| powf(x, 2.5),
            |g, x, y, d| powf_vjp(g, x, y, 2.5, d),
            &pos,
            1e-7,
        );
        check_fd1("abs", abs, abs_vjp, &x, 1e-8);
        check_fd1("sin", sin, sin_vjp, &x, 1e-8);
        check_fd1("cos", cos, cos_vjp, &x, 1e-8);
        check_fd1("tanh", tanh, tanh_vjp, &x, 1e-8);
        check_fd1("sigmoid", sigmoid, sigmoid_vjp, &x, 1e-8);
        check_fd1("relu", relu, relu_vjp, &x, 1e-8);
        check_fd1("softplus", softplus, softplus_vjp, &x, 1e-8);
        check_fd1("gelu", gelu, gelu_vjp, &x, 1e-8);
        // On scalars (0-d arrays) too.
        check_fd1("tanh (0-d)", tanh, tanh_vjp, &det(&[], 3, -1.0, 1.0), 1e-8);
    }

    #[test]
    fn stable_at_extremes() {
        // softplus(1000) = 1000 (no overflow); its slope is σ(1000) = 1.
        assert_eq!(softplus(&1000.0_f64).unwrap(), 1000.0);
        assert_eq!(softplus(&-1000.0_f64).unwrap(), 0.0);
        assert_eq!(sigmoid(&-1000.0_f64).unwrap(), 0.0);
        assert_eq!(sigmoid(&1000.0_f64).unwrap(), 1.0);
        let mut d = None;
        softplus_vjp(1.0, &1000.0_f64, &1000.0, Acc::to(&mut d)).unwrap();
        assert_eq!(d, Some(1.0));
        // In f32, within one rounding of the f64 value.
        let exact = (1.0_f64 + 1e-3_f64.exp()).ln();
        let got = f64::from(softplus(&1e-3_f32).unwrap());
        assert!(
            (got - exact).abs() <= exact * f64::from(f32::EPSILON),
            "{got} vs {exact}"
        );
    }

    #[test]
    fn ln_of_non_positive_is_a_domain_error() {
        let err = ln(&array![[1.0_f64, 2.0], [0.0, 3.0]]).unwrap_err();
        assert_eq!(err.to_string(), "ln: non-positive input 0 at index [1, 0]");
        assert!(ln(&-1.0_f32).is_err());
    }

    #[test]
    fn std_kernels_match_std_and_vectorized_ones_are_close() {
        let ulps = |a: f64, b: f64| (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs();
        for v in [-1.5_f64, -0.1, 0.0, 0.3, 2.0] {
            assert_eq!(tanh_std(&v).unwrap(), v.tanh());
            assert_eq!(exp_std(&v).unwrap(), v.exp());
            assert_eq!(tanh_std(&(v as f32)).unwrap(), (v as f32).tanh());
            assert!(ulps(tanh(&v).unwrap(), v.tanh()) <= 2, "tanh({v})");
            assert!(ulps(exp(&v).unwrap(), v.exp()) <= 1, "exp({v})");
            let t32 = tanh(&(v as f32)).unwrap();
            assert!(
                (t32 - (v as f32).tanh()).abs() <= f32::EPSILON,
                "tanh({v}_f32)"
            );
        }
    }

    #[test]
    fn tanh_of_arrays_is_tanh_of_each_element_whatever_the_layout() {
        // 3×7: two whole strips and 5 elements left; its transpose is not contiguous in
        // standard order but is in memory; a column step of 2 is neither.
        let x = Array2::from_shape_fn((3, 7), |(i, j)| (i as f64 - 1.0) * 0.9 + j as f64 * 0.13);
        let wide = Array2::from_shape_fn((3, 14), |(i, j)| i as f64 * 0.4 - j as f64 * 0.2);
        let strided = wide.slice_axis(Axis(1), Slice::new(0, None, 2));
        for view in [x.view(), x.t(), strided] {
            let y = tanh(&view).unwrap();
            for (t, v) in y.iter().zip(view.iter()) {
                assert_eq!(t.to_bits(), crate::math::tanh(*v).to_bits(), "tanh({v})");
            }
            let (moved, _) =
                crate::reuse::unary_strips(view.to_owned(), crate::fuse::tanh_shared, elem::tanh);
            assert_eq!(moved, y);
        }
    }
}
