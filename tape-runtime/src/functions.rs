//! The plain op functions of the prelude: `tanh(&z)`, `mse(&h, y)`, `softmax(&z)`, …
//!
//! They are what a `#[differentiable]` function's body calls when it runs as ordinary Rust, so
//! the annotated function compiles and computes its value exactly as written. Each is a thin
//! wrapper over the checked kernel in [`ops`](crate::ops), and like ndarray's own methods it
//! panics where the kernel returns an error. The generated gradient code never calls these: it
//! calls the checked kernels and returns `Err(TapeError)` instead.
//!
//! Each function's documentation gives the forward math, the VJP the generated code runs (`ḡ`
//! is the output's cotangent, `x̄` what the input receives; an operand that was broadcast gets
//! its cotangent summed back to its own shape), the PyTorch and JAX equivalents, and an
//! example. Every VJP is tested against its formula and against central differences in the
//! kernel's module.
//!
//! | op | forward | VJP | PyTorch | JAX |
//! |---|---|---|---|---|
//! | `a + b`, `a - b` | `a ± b` | `ā = ḡ`, `b̄ = ±ḡ` | `a + b` | `a + b` |
//! | `a * b` | `a·b` | `ā = ḡ·b`, `b̄ = ḡ·a` | `a * b` | `a * b` |
//! | `a / b` | `a / b` | `ā = ḡ/b`, `b̄ = −ḡ·(a/b)/b` | `a / b` | `a / b` |
//! | [`neg`], `-x` | `−x` | `x̄ = −ḡ` | `-x` | `-x` |
//! | [`exp`] | `eˣ` | `ḡ·y` | `torch.exp` | `jnp.exp` |
//! | [`ln`], [`log`] | `ln x` | `ḡ/x` | `torch.log` | `jnp.log` |
//! | [`sqrt`] | `√x` | `ḡ/(2y)`, `0` for `x ≤ 0` | `torch.sqrt` | `jnp.sqrt` |
//! | [`powi`], [`powf`] | `xⁿ`, `xᶜ` | `ḡ·n·xⁿ⁻¹` | `x ** n` | `x ** n` |
//! | [`abs`] | `\|x\|` | `ḡ·sign(x)`, `0` at 0 | `torch.abs` | `jnp.abs` |
//! | [`sin`], [`cos`] | `sin x`, `cos x` | `ḡ·cos x`, `−ḡ·sin x` | `torch.sin` | `jnp.sin` |
//! | [`tanh`] | `tanh x` | `ḡ·(1 − y²)` | `torch.tanh` | `jnp.tanh` |
//! | [`sigmoid`] | `1/(1 + e⁻ˣ)` | `ḡ·y·(1 − y)` | `torch.sigmoid` | `jax.nn.sigmoid` |
//! | [`relu`] | `max(x, 0)` | `ḡ·[x > 0]` | `torch.relu` | `jax.nn.relu` |
//! | [`softplus`] | `ln(1 + eˣ)` | `ḡ·σ(x)` | `F.softplus` | `jax.nn.softplus` |
//! | [`gelu`] | `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` | its derivative | `F.gelu(x, approximate="tanh")` | `jax.nn.gelu` |
//! | [`maximum`], [`minimum`] | `max(a, b)`, `min(a, b)` | to the larger (smaller), `½` each at a tie | `torch.maximum` | `jnp.maximum` |
//! | [`clamp`] | `min(max(x, lo), hi)` | `ḡ` strictly inside, `0` at and beyond the bounds | `torch.clamp` | `jnp.clip` |
//! | [`dot`] | `A·B` | `Ā = Ḡ·Bᵀ`, `B̄ = Aᵀ·Ḡ` | `a @ b` | `a @ b` |
//! | [`transpose`], `x.t()` | `xᵀ` | `ḡᵀ` | `x.T` | `x.T` |
//! | [`sum`], [`mean`] | `Σx`, `Σx/n` | `ḡ`, `ḡ/n` on every element | `x.sum()`, `x.mean()` | `jnp.sum`, `jnp.mean` |
//! | [`sum_axis`], [`mean_axis`] | along `k` | `ḡ` (`/n_k`) broadcast along `k` | `x.sum(dim=k)` | `jnp.sum(x, axis=k)` |
//! | [`softmax`](fn@softmax) | `eˣ/Σeˣ`, last axis | `y ⊙ (ḡ − ⟨ḡ, y⟩)` | `torch.softmax(x, -1)` | `jax.nn.softmax` |
//! | [`log_softmax`] | `x − logsumexp(x)` | `ḡ − softmax(x)·Σḡ` | `torch.log_softmax(x, -1)` | `jax.nn.log_softmax` |
//! | [`logsumexp`] | `ln Σeˣ`, last axis removed | `ḡ·softmax(x)` | `torch.logsumexp(x, -1)` | `jax.nn.logsumexp(x, -1)` |
//! | [`mse`] | `Σ(p − t)²/n` | `p̄ = 2ḡ(p − t)/n`, `t̄ = −p̄` | `F.mse_loss` | `jnp.mean((p - t) ** 2)` |
//! | [`cross_entropy`] | `−(1/B)Σ t·log_softmax(z)` | `z̄ = ḡ(softmax(z) − t)/B` (one-hot `t`) | `F.cross_entropy(z, t)` | `optax.softmax_cross_entropy(z, t).mean()` |
//! | [`detach`] | `x` | none | `x.detach()` | `jax.lax.stop_gradient` |

use crate::broadcast::Broadcast;
use crate::error::Result;
use crate::float::Float;
use crate::ops::{arith, compare, linalg, loss, reduce, softmax, unary};
use crate::tensor::{Input, Tensor};
use ndarray::{Array, ArrayBase, Axis, Data, Dimension, RemoveAxis};

#[track_caller]
fn ok<T>(result: Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{error}"),
    }
}

type Owned<X> = <<X as Input>::Tensor as Tensor>::Owned;
type Elem<X> = <<X as Input>::Tensor as Tensor>::Elem;
type BroadcastOut<A, B> = <<A as Input>::Tensor as Broadcast<<B as Input>::Tensor>>::Out;

macro_rules! plain_unary {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name<X: Input>(x: X) -> Owned<X> {
            ok(unary::$name(x.tensor()))
        }
    )*};
}

plain_unary! {
    /// `y = eˣ` elementwise. VJP: `x̄ = ḡ·y`. PyTorch `torch.exp`, JAX `jnp.exp`.
    ///
    /// Computed by [`math::exp`](crate::math::exp): within 1 ulp of libm, and a loop of it
    /// vectorizes. The method `x.exp()` in a differentiable function computes as libm does.
    /// Kernels: [`unary::exp`], [`unary::exp_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::exp;
    /// # use ndarray::array;
    /// let y = exp(&array![0.0, 1.0]);
    /// assert_eq!(y[0], 1.0);
    /// assert!((y[1] - std::f64::consts::E).abs() < 1e-15);
    /// ```
    exp;
    /// `y = ln x` elementwise, for `x > 0`. VJP: `x̄ = ḡ / x`. PyTorch `torch.log`, JAX
    /// `jnp.log`. Kernels: [`unary::ln`], [`unary::ln_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::ln;
    /// # use ndarray::array;
    /// let y = ln(&array![1.0, std::f64::consts::E]);
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 1.0).abs() < 1e-15);
    /// ```
    ///
    /// # Panics
    /// If an element is not positive (the generated gradient returns
    /// [`TapeError::Domain`](crate::TapeError::Domain) naming it instead).
    ln;
    /// `y = √x` elementwise. VJP: `x̄ = ḡ / (2y)` for `x > 0` and `0` for `x ≤ 0` (a
    /// subgradient at 0 rather than ∞). PyTorch `torch.sqrt`, JAX `jnp.sqrt`. Kernels:
    /// [`unary::sqrt`], [`unary::sqrt_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::sqrt;
    /// # use ndarray::array;
    /// assert_eq!(sqrt(&array![4.0, 9.0]), array![2.0, 3.0]);
    /// ```
    sqrt;
    /// `y = |x|` elementwise. VJP: `x̄ = ḡ·sign(x)`, and `0` at `x = 0`. PyTorch `torch.abs`,
    /// JAX `jnp.abs`. Kernels: [`unary::abs`], [`unary::abs_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::abs;
    /// # use ndarray::array;
    /// assert_eq!(abs(&array![-2.0, 0.0, 3.0]), array![2.0, 0.0, 3.0]);
    /// ```
    abs;
    /// `y = sin x` elementwise. VJP: `x̄ = ḡ·cos x`. PyTorch `torch.sin`, JAX `jnp.sin`.
    /// Kernels: [`unary::sin`], [`unary::sin_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::sin;
    /// assert_eq!(sin(0.0_f64), 0.0);
    /// ```
    sin;
    /// `y = cos x` elementwise. VJP: `x̄ = −ḡ·sin x`. PyTorch `torch.cos`, JAX `jnp.cos`.
    /// Kernels: [`unary::cos`], [`unary::cos_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::cos;
    /// assert_eq!(cos(0.0_f64), 1.0);
    /// ```
    cos;
    /// `y = tanh x` elementwise. VJP: `x̄ = ḡ·(1 − y²)`, from the output. PyTorch
    /// `torch.tanh`, JAX `jnp.tanh`.
    ///
    /// Computed by [`math::tanh`](crate::math::tanh): within 2 ulp of libm, and a loop of it
    /// vectorizes. The method `x.tanh()` computes as libm does. Kernels: [`unary::tanh`],
    /// [`unary::tanh_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::tanh;
    /// # use ndarray::array;
    /// assert_eq!(tanh(&array![0.0, 0.0]), array![0.0, 0.0]);
    /// assert_eq!(tanh(0.0_f64), 0.0);
    /// assert!((tanh(1.0_f64) - 1.0_f64.tanh()).abs() < 1e-15);
    /// ```
    tanh;
    /// `y = 1 / (1 + e⁻ˣ)` elementwise, the logistic function, stable for large `|x|`. VJP:
    /// `x̄ = ḡ·y·(1 − y)`. PyTorch `torch.sigmoid`, JAX `jax.nn.sigmoid`. Kernels:
    /// [`unary::sigmoid`], [`unary::sigmoid_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::sigmoid;
    /// # use ndarray::array;
    /// assert_eq!(sigmoid(&array![0.0, -800.0]), array![0.5, 0.0]);
    /// ```
    sigmoid;
    /// `y = max(x, 0)` elementwise. VJP: `x̄ = ḡ` where `x > 0`, else `0` (`relu′(0) = 0`,
    /// as PyTorch). PyTorch `torch.relu`, JAX `jax.nn.relu`. Kernels: [`unary::relu`],
    /// [`unary::relu_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::relu;
    /// # use ndarray::array;
    /// assert_eq!(relu(&array![-1.0, 0.0, 2.0]), array![0.0, 0.0, 2.0]);
    /// ```
    relu;
    /// `y = ln(1 + eˣ)` elementwise, stable for large `|x|`. VJP: `x̄ = ḡ·σ(x)`. PyTorch
    /// `F.softplus`, JAX `jax.nn.softplus`. Kernels: [`unary::softplus`],
    /// [`unary::softplus_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::softplus;
    /// assert_eq!(softplus(800.0_f64), 800.0);
    /// assert!((softplus(0.0_f64) - 2.0_f64.ln()).abs() < 1e-15);
    /// ```
    softplus;
    /// GELU, tanh form: `y = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))` elementwise. VJP: with
    /// `t` that tanh, `x̄ = ḡ·(½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²))`. PyTorch
    /// `F.gelu(x, approximate="tanh")`, JAX `jax.nn.gelu` (its default). Kernels:
    /// [`unary::gelu`], [`unary::gelu_vjp`].
    ///
    /// ```
    /// # use tape_runtime::functions::gelu;
    /// # use ndarray::array;
    /// let y = gelu(&array![0.0_f64, 3.0]);
    /// assert_eq!(y[0], 0.0);
    /// assert!((y[1] - 2.9964).abs() < 1e-4);
    /// ```
    gelu;
}

/// [`ln`] under PyTorch's and JAX's name: `y = ln x`, `x̄ = ḡ / x`.
///
/// ```
/// # use tape_runtime::functions::log;
/// assert_eq!(log(1.0_f64), 0.0);
/// ```
///
/// # Panics
/// If an element is not positive.
pub fn log<X: Input>(x: X) -> Owned<X> {
    ok(unary::ln(x.tensor()))
}

/// An owned copy of `x` that takes no part in differentiation: `y = x`, and no cotangent flows
/// back. Inside a `#[differentiable]` function, a branch condition may read a differentiable
/// value only through `detach` (`if detach(&x).sum() > 0.0 { … }`). PyTorch `x.detach()`, JAX
/// `jax.lax.stop_gradient`.
///
/// ```
/// # use tape_runtime::functions::detach;
/// # use ndarray::array;
/// let x = array![1.0, -2.0];
/// assert_eq!(detach(&x), x);
/// ```
pub fn detach<X: Input>(x: X) -> Owned<X> {
    x.tensor().to_value()
}

/// `y = −x` elementwise (the operator `-x`). VJP: `x̄ = −ḡ`. PyTorch `torch.neg`, JAX
/// `jnp.negative`. Kernels: [`arith::neg`], [`arith::neg_vjp`].
///
/// ```
/// # use tape_runtime::functions::neg;
/// # use ndarray::array;
/// assert_eq!(neg(&array![1.0, -2.0]), array![-1.0, 2.0]);
/// ```
pub fn neg<X: Input>(x: X) -> Owned<X> {
    ok(arith::neg(x.tensor()))
}

/// `y = xⁿ` elementwise for an integer `n` (the method `x.powi(n)`). VJP: `x̄ = ḡ·n·xⁿ⁻¹`.
/// PyTorch `x ** n`, JAX `x ** n`. Kernels: [`unary::powi`], [`unary::powi_vjp`].
///
/// ```
/// # use tape_runtime::functions::powi;
/// # use ndarray::array;
/// assert_eq!(powi(&array![2.0, -3.0], 3), array![8.0, -27.0]);
/// ```
pub fn powi<X: Input>(x: X, n: i32) -> Owned<X> {
    ok(unary::powi(x.tensor(), n))
}

/// `y = xᶜ` elementwise for a real constant `c` (the method `x.powf(c)`). VJP:
/// `x̄ = ḡ·c·xᶜ⁻¹`. PyTorch `torch.pow(x, c)`, JAX `jnp.power(x, c)`. Kernels:
/// [`unary::powf`], [`unary::powf_vjp`].
///
/// ```
/// # use tape_runtime::functions::powf;
/// # use ndarray::array;
/// assert_eq!(powf(&array![4.0, 9.0], 0.5), array![2.0, 3.0]);
/// ```
pub fn powf<X: Input>(x: X, c: Elem<X>) -> Owned<X> {
    ok(unary::powf(x.tensor(), c))
}

/// `y = min(max(x, lo), hi)` elementwise. VJP: `x̄ = ḡ` strictly inside `(lo, hi)`, `0` at
/// and beyond the bounds. PyTorch `torch.clamp`, JAX `jnp.clip`. Kernels:
/// [`compare::clamp`], [`compare::clamp_vjp`].
///
/// ```
/// # use tape_runtime::functions::clamp;
/// # use ndarray::array;
/// assert_eq!(clamp(&array![-2.0, 0.5, 3.0], 0.0, 1.0), array![0.0, 0.5, 1.0]);
/// ```
///
/// # Panics
/// If `lo > hi`.
pub fn clamp<X: Input>(x: X, lo: Elem<X>, hi: Elem<X>) -> Owned<X> {
    ok(compare::clamp(x.tensor(), lo, hi))
}

/// `y = max(a, b)` elementwise, broadcasting (the method `a.max(b)` on floats). VJP: the
/// cotangent goes to the larger operand, `½ḡ` to each at a tie. PyTorch `torch.maximum`, JAX
/// `jnp.maximum`. Kernels: [`compare::maximum`], [`compare::maximum_vjp`].
///
/// ```
/// # use tape_runtime::functions::maximum;
/// # use ndarray::array;
/// assert_eq!(maximum(&array![-1.0, 2.0], 0.0_f64), array![0.0, 2.0]);
/// ```
///
/// # Panics
/// If the shapes do not broadcast.
pub fn maximum<A, B>(a: A, b: B) -> BroadcastOut<A, B>
where
    A: Input,
    B: Input,
    A::Tensor: Broadcast<B::Tensor>,
    B::Tensor: Tensor<Elem = Elem<A>>,
{
    ok(compare::maximum(a.tensor(), b.tensor()))
}

/// `y = min(a, b)` elementwise, broadcasting. VJP: the cotangent goes to the smaller operand,
/// `½ḡ` to each at a tie. PyTorch `torch.minimum`, JAX `jnp.minimum`. Kernels:
/// [`compare::minimum`], [`compare::minimum_vjp`].
///
/// ```
/// # use tape_runtime::functions::minimum;
/// # use ndarray::array;
/// assert_eq!(minimum(&array![-1.0, 2.0], &array![0.0, 0.0]), array![-1.0, 0.0]);
/// ```
///
/// # Panics
/// If the shapes do not broadcast.
pub fn minimum<A, B>(a: A, b: B) -> BroadcastOut<A, B>
where
    A: Input,
    B: Input,
    A::Tensor: Broadcast<B::Tensor>,
    B::Tensor: Tensor<Elem = Elem<A>>,
{
    ok(compare::minimum(a.tensor(), b.tensor()))
}

/// `C = A·B`: the matrix product, matrix·vector, vector·matrix or inner product, as ndarray's
/// `a.dot(&b)`. VJP: `Ā = Ḡ·Bᵀ`, `B̄ = Aᵀ·Ḡ` (outer and matrix-vector products for vector
/// operands). PyTorch `a @ b`, JAX `a @ b` (`jnp.dot`). Kernels: [`linalg::dot`],
/// [`linalg::dot_vjp`].
///
/// ```
/// # use tape_runtime::functions::dot;
/// # use ndarray::array;
/// let a = array![[1.0, 2.0], [3.0, 4.0]];
/// assert_eq!(dot(&a, &array![1.0, 1.0]), array![3.0, 7.0]);
/// assert_eq!(dot(&array![1.0, 2.0], &array![3.0, 4.0]), 11.0);
/// ```
///
/// # Panics
/// If the inner dimensions differ.
pub fn dot<A, B>(a: &A, b: &B) -> <A as linalg::Dot<B>>::Out
where
    A: linalg::Dot<B>,
    B: Tensor<Elem = A::Elem>,
{
    ok(linalg::dot(a, b))
}

/// `y = xᵀ`: the axes reversed, as an owned array (in a differentiable function `x.t()` does
/// the same). VJP: `x̄ = ḡᵀ`. PyTorch `x.T`, JAX `x.T`. Kernels: [`linalg::transpose`],
/// [`linalg::transpose_vjp`].
///
/// ```
/// # use tape_runtime::functions::transpose;
/// # use ndarray::array;
/// assert_eq!(transpose(&array![[1.0, 2.0]]), array![[1.0], [2.0]]);
/// ```
pub fn transpose<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<F, D> {
    ok(linalg::transpose(x))
}

/// `y = Σ x`, over all elements (the method `x.sum()`). VJP: `x̄ = ḡ` on every element.
/// PyTorch `x.sum()`, JAX `jnp.sum(x)`. Kernels: [`reduce::sum`], [`reduce::sum_vjp`].
///
/// ```
/// # use tape_runtime::functions::sum;
/// # use ndarray::array;
/// assert_eq!(sum(&array![[1.0, 2.0], [3.0, 4.0]]), 10.0);
/// ```
pub fn sum<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> F {
    ok(reduce::sum(x))
}

/// `y = Σ x / n`, over all `n` elements (the method `x.mean()`). VJP: `x̄ = ḡ / n` on every
/// element. PyTorch `x.mean()`, JAX `jnp.mean(x)`. Kernels: [`reduce::mean`],
/// [`reduce::mean_vjp`].
///
/// ```
/// # use tape_runtime::functions::mean;
/// # use ndarray::array;
/// assert_eq!(mean(&array![1.0, 2.0, 3.0, 6.0]), 3.0);
/// ```
///
/// # Panics
/// If the array is empty.
pub fn mean<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> F {
    ok(reduce::mean(x))
}

/// `y = Σₖ x` along `axis`, which is removed (the method `x.sum_axis(Axis(k))`). VJP: `ḡ`
/// broadcast back along `axis`. PyTorch `x.sum(dim=k)`, JAX `jnp.sum(x, axis=k)`. Kernels:
/// [`reduce::sum_axis`], [`reduce::sum_axis_vjp`].
///
/// ```
/// # use tape_runtime::functions::sum_axis;
/// # use ndarray::{array, Axis};
/// assert_eq!(sum_axis(&array![[1.0, 2.0], [3.0, 4.0]], Axis(0)), array![4.0, 6.0]);
/// ```
///
/// # Panics
/// If `axis` is out of range.
pub fn sum_axis<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    x: &ArrayBase<S, D>,
    axis: Axis,
) -> Array<F, D::Smaller> {
    ok(reduce::sum_axis(x, axis))
}

/// `y = Σₖ x / nₖ` along `axis`, which is removed (the method `x.mean_axis(Axis(k))`). VJP:
/// `ḡ / nₖ` broadcast back along `axis`. PyTorch `x.mean(dim=k)`, JAX `jnp.mean(x, axis=k)`.
/// Kernels: [`reduce::mean_axis`], [`reduce::mean_axis_vjp`].
///
/// ```
/// # use tape_runtime::functions::mean_axis;
/// # use ndarray::{array, Axis};
/// assert_eq!(mean_axis(&array![[1.0, 2.0], [3.0, 4.0]], Axis(1)), array![1.5, 3.5]);
/// ```
///
/// # Panics
/// If `axis` is out of range or empty.
pub fn mean_axis<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    x: &ArrayBase<S, D>,
    axis: Axis,
) -> Array<F, D::Smaller> {
    ok(reduce::mean_axis(x, axis))
}

/// `yᵢ = e^(xᵢ) / Σⱼ e^(xⱼ)` along the last axis, max-shifted so no `exp` overflows. VJP:
/// `x̄ = y ⊙ (ḡ − ⟨ḡ, y⟩)` lane by lane. PyTorch `torch.softmax(x, dim=-1)`, JAX
/// `jax.nn.softmax(x)`. Kernels: [`softmax::softmax`], [`softmax::softmax_vjp`].
///
/// ```
/// # use tape_runtime::functions::softmax;
/// # use ndarray::array;
/// assert_eq!(softmax(&array![[0.0, 0.0], [1000.0, 1000.0]]), array![[0.5, 0.5], [0.5, 0.5]]);
/// ```
///
/// # Panics
/// If `x` is 0-dimensional.
pub fn softmax<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<F, D> {
    ok(softmax::softmax(x))
}

/// `y = x − logsumexp(x)` along the last axis. VJP: `x̄ = ḡ − softmax(x)·Σḡ` lane by lane.
/// PyTorch `torch.log_softmax(x, dim=-1)`, JAX `jax.nn.log_softmax(x)`. Kernels:
/// [`softmax::log_softmax`], [`softmax::log_softmax_vjp`].
///
/// ```
/// # use tape_runtime::functions::log_softmax;
/// # use ndarray::array;
/// let y = log_softmax(&array![0.0, 0.0]);
/// assert!((y[0] + 2.0_f64.ln()).abs() < 1e-15);
/// ```
///
/// # Panics
/// If `x` is 0-dimensional.
pub fn log_softmax<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<F, D> {
    ok(softmax::log_softmax(x))
}

/// `y = ln Σ eˣ` along the last axis, which is removed (a vector's is a scalar), max-shifted.
/// VJP: `x̄ = ḡ·softmax(x)`. PyTorch `torch.logsumexp(x, dim=-1)`, JAX
/// `jax.nn.logsumexp(x, axis=-1)`. Kernels: [`softmax::logsumexp`],
/// [`softmax::logsumexp_vjp`].
///
/// ```
/// # use tape_runtime::functions::logsumexp;
/// # use ndarray::array;
/// assert!((logsumexp(&array![1000.0, 1000.0]) - (1000.0 + 2.0_f64.ln())).abs() < 1e-12);
/// ```
///
/// # Panics
/// If `x` is 0-dimensional.
pub fn logsumexp<F, S, D>(x: &ArrayBase<S, D>) -> <ArrayBase<S, D> as softmax::LogSumExp>::Reduced
where
    F: Float,
    S: Data<Elem = F>,
    D: RemoveAxis,
    ArrayBase<S, D>: softmax::LogSumExp<Elem = F, Dim = D>,
{
    ok(softmax::logsumexp(x))
}

/// Mean squared error, `L = Σ (p − t)² / n` over all `n` elements. VJP:
/// `p̄ = 2ḡ(p − t)/n`, `t̄ = −p̄`. PyTorch `F.mse_loss(p, t)`, JAX `jnp.mean((p - t) ** 2)`.
/// Kernels: [`loss::mse`], [`loss::mse_vjp`].
///
/// ```
/// # use tape_runtime::functions::mse;
/// # use ndarray::array;
/// assert_eq!(mse(&array![1.0, 2.0], &array![1.0, 4.0]), 2.0);
/// ```
///
/// # Panics
/// If the shapes differ or are empty.
pub fn mse<A, B>(pred: A, target: B) -> Elem<A>
where
    A: Input,
    B: Input,
    B::Tensor: Tensor<Elem = Elem<A>, Dim = <A::Tensor as Tensor>::Dim>,
{
    ok(loss::mse(pred.tensor(), target.tensor()))
}

/// Softmax cross-entropy of `logits` against a one-hot (or probability) `target` of the same
/// shape, mean over the `B` rows: `L = −(1/B) Σ_b Σ_c t_bc · log_softmax(z)_bc`, classes on the
/// last axis. VJP: `z̄ = ḡ·(softmax(z) − t)/B` for one-hot rows (in general
/// `ḡ·(softmax(z)·Σ_c t − t)/B`), `t̄ = −ḡ·log_softmax(z)/B`. PyTorch `F.cross_entropy(z, t)`
/// with probability targets, JAX `optax.softmax_cross_entropy(z, t).mean()`. Kernels:
/// [`loss::cross_entropy`], [`loss::cross_entropy_vjp`].
///
/// ```
/// # use tape_runtime::functions::cross_entropy;
/// # use ndarray::array;
/// // Two classes scored equally: ln 2 per row.
/// let l = cross_entropy(&array![[0.0, 0.0], [5.0, 5.0]], &array![[1.0, 0.0], [0.0, 1.0]]);
/// assert!((l - 2.0_f64.ln()).abs() < 1e-15);
/// ```
///
/// # Panics
/// If the shapes differ or there are no rows or classes.
pub fn cross_entropy<F, SA, SB, D>(logits: &ArrayBase<SA, D>, target: &ArrayBase<SB, D>) -> F
where
    F: Float,
    SA: Data<Elem = F>,
    SB: Data<Elem = F>,
    D: Dimension,
{
    ok(loss::cross_entropy(logits, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, array};

    #[test]
    fn plain_functions_accept_references_and_scalars() {
        let z = array![[0.5_f64, -0.5]];
        let p: &Array1<f64> = &array![1.0, 2.0];
        assert_eq!(tanh(&z), z.mapv(f64::tanh));
        assert_eq!(relu(p), array![1.0, 2.0]);
        assert_eq!(sigmoid(0.0_f64), 0.5);
        assert_eq!(maximum(p, 1.5_f64), array![1.5, 2.0]);
        assert_eq!(mse(p, p), 0.0);
        assert_eq!(dot(p, p), 5.0);
    }

    #[test]
    #[should_panic(expected = "ln: non-positive input -1 at index [0]")]
    fn plain_functions_panic_with_the_kernel_message() {
        let _ = ln(&array![-1.0_f64]);
    }
}
