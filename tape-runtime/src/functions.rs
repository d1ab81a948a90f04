//! The plain op functions of the prelude: `tanh(&z)`, `mse(&h, y)`, `softmax(&z)`, …
//!
//! They are what a `#[differentiable]` function's body calls when it runs as ordinary Rust, so
//! the annotated function compiles and computes its value exactly as written. Each is a thin
//! wrapper over the checked kernel in [`ops`](crate::ops), and like ndarray's own methods it
//! panics where the kernel returns an error. The generated gradient code never calls these: it
//! calls the checked kernels and returns `Err(TapeError)` instead.

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
    /// `eˣ` elementwise; see [`unary::exp`].
    exp;
    /// `ln x` elementwise; see [`unary::ln`].
    ///
    /// # Panics
    /// If an element is not positive.
    ln;
    /// `√x` elementwise; see [`unary::sqrt`].
    sqrt;
    /// `|x|` elementwise; see [`unary::abs`].
    abs;
    /// `sin x` elementwise; see [`unary::sin`].
    sin;
    /// `cos x` elementwise; see [`unary::cos`].
    cos;
    /// `tanh x` elementwise; see [`unary::tanh`].
    ///
    /// ```
    /// use tape_runtime::functions::tanh;
    /// use ndarray::array;
    /// assert_eq!(tanh(&array![0.0, 0.0]), array![0.0, 0.0]);
    /// assert_eq!(tanh(0.0_f64), 0.0);
    /// ```
    tanh;
    /// `1 / (1 + e⁻ˣ)` elementwise; see [`unary::sigmoid`].
    sigmoid;
    /// `max(x, 0)` elementwise; see [`unary::relu`].
    relu;
    /// `ln(1 + eˣ)` elementwise, stable for large `|x|`; see [`unary::softplus`].
    softplus;
    /// GELU, tanh form, elementwise; see [`unary::gelu`].
    gelu;
}

/// `ln x` elementwise (the natural logarithm, as PyTorch's `log`); see [`unary::ln`].
///
/// # Panics
/// If an element is not positive.
pub fn log<X: Input>(x: X) -> Owned<X> {
    ok(unary::ln(x.tensor()))
}

/// An owned copy of `x` that takes no part in differentiation: inside a `#[differentiable]`
/// function, a branch condition may read a differentiable value only through `detach`
/// (`if detach(&x).sum() > 0.0 { … }`). JAX `lax.stop_gradient`, PyTorch `x.detach()`.
pub fn detach<X: Input>(x: X) -> Owned<X> {
    x.tensor().to_value()
}

/// `−x` elementwise; see [`arith::neg`].
pub fn neg<X: Input>(x: X) -> Owned<X> {
    ok(arith::neg(x.tensor()))
}

/// `xⁿ` elementwise; see [`unary::powi`].
pub fn powi<X: Input>(x: X, n: i32) -> Owned<X> {
    ok(unary::powi(x.tensor(), n))
}

/// `xᶜ` elementwise; see [`unary::powf`].
pub fn powf<X: Input>(x: X, c: Elem<X>) -> Owned<X> {
    ok(unary::powf(x.tensor(), c))
}

/// `min(max(x, lo), hi)` elementwise; see [`compare::clamp`].
///
/// # Panics
/// If `lo > hi`.
pub fn clamp<X: Input>(x: X, lo: Elem<X>, hi: Elem<X>) -> Owned<X> {
    ok(compare::clamp(x.tensor(), lo, hi))
}

/// `max(a, b)` elementwise, broadcasting; see [`compare::maximum`].
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

/// `min(a, b)` elementwise, broadcasting; see [`compare::minimum`].
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

/// The matrix or inner product, as ndarray's `dot`; see [`linalg::dot`].
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

/// The axes reversed, as an owned array; see [`linalg::transpose`].
pub fn transpose<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<F, D> {
    ok(linalg::transpose(x))
}

/// The sum of all elements; see [`reduce::sum`].
pub fn sum<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> F {
    ok(reduce::sum(x))
}

/// The mean of all elements; see [`reduce::mean`].
///
/// # Panics
/// If the array is empty.
pub fn mean<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> F {
    ok(reduce::mean(x))
}

/// Sums along `axis`; see [`reduce::sum_axis`].
///
/// # Panics
/// If `axis` is out of range.
pub fn sum_axis<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    x: &ArrayBase<S, D>,
    axis: Axis,
) -> Array<F, D::Smaller> {
    ok(reduce::sum_axis(x, axis))
}

/// Means along `axis`; see [`reduce::mean_axis`].
///
/// # Panics
/// If `axis` is out of range or empty.
pub fn mean_axis<F: Float, S: Data<Elem = F>, D: RemoveAxis>(
    x: &ArrayBase<S, D>,
    axis: Axis,
) -> Array<F, D::Smaller> {
    ok(reduce::mean_axis(x, axis))
}

/// Softmax along the last axis; see [`softmax::softmax`].
///
/// # Panics
/// If `x` is 0-dimensional.
pub fn softmax<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<F, D> {
    ok(softmax::softmax(x))
}

/// Log-softmax along the last axis; see [`softmax::log_softmax`].
///
/// # Panics
/// If `x` is 0-dimensional.
pub fn log_softmax<F: Float, S: Data<Elem = F>, D: Dimension>(x: &ArrayBase<S, D>) -> Array<F, D> {
    ok(softmax::log_softmax(x))
}

/// `ln Σ exp` along the last axis, which is removed; see [`softmax::logsumexp`].
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

/// Mean squared error; see [`loss::mse`].
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

/// Softmax cross-entropy, mean over the batch; see [`loss::cross_entropy`].
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
