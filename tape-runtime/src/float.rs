//! The element types tape differentiates: `f32` and `f64`.

use crate::math;
use crate::workspace::Buffers;
use ndarray::NdFloat;
#[cfg(feature = "faer")]
use ndarray::{Array2, ArrayView2};
use std::cell::RefCell;
use std::iter::Sum;

/// A floating-point element type: `f32` or `f64`.
///
/// Everything in tape is generic over `Float`, so a `#[differentiable]` function may be written
/// for either precision (or, later, generically).
pub trait Float: NdFloat + Default + Sum + 'static {
    /// The type's name, `"f32"` or `"f64"`, for messages.
    const NAME: &'static str;

    /// Converts an `f64` constant to this type (rounding to nearest for `f32`).
    fn from_f64(value: f64) -> Self;

    /// Widens the value to `f64` (exact for both types).
    fn to_f64(self) -> f64;

    /// Converts a count to this type, for means (`1 / n`).
    fn from_usize(n: usize) -> Self;

    /// `eˣ` by [`math::exp`]: no libm call, so loops over it vectorize.
    fn exp_vectorized(self) -> Self;

    /// `tanh x` by [`math::tanh`].
    fn tanh_vectorized(self) -> Self;

    /// [`Float::tanh_vectorized`] of `N` values at once, by [`math::tanh_strip`].
    fn tanh_strip<const N: usize>(x: &[Self; N]) -> [Self; N];

    /// The logistic function by [`math::sigmoid`].
    fn sigmoid_vectorized(self) -> Self;

    /// A zero that lives for the whole program: what a moved array's stand-in views
    /// ([`reuse::ghost`](crate::reuse::ghost)).
    fn static_zero() -> &'static Self;

    /// Runs `f` on the calling thread's [`workspace`](crate::workspace) buffers of this type;
    /// `None` while the thread is ending or the buffers are in use further up the stack.
    fn with_workspace<R>(f: impl FnOnce(&mut Buffers<Self>) -> R) -> Option<R>;

    /// `a · b` by faer's kernel, or `None` where ndarray's `dot` should do it (see
    /// [`gemm`](crate::gemm)).
    #[cfg(feature = "faer")]
    fn faer_matmul(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>) -> Option<Array2<Self>>;
}

impl Float for f32 {
    const NAME: &'static str = "f32";

    fn static_zero() -> &'static f32 {
        &0.0
    }

    fn with_workspace<R>(f: impl FnOnce(&mut Buffers<f32>) -> R) -> Option<R> {
        thread_local! {
            static BUFFERS: RefCell<Buffers<f32>> = const { RefCell::new(Buffers::new()) };
        }
        crate::workspace::with(&BUFFERS, f)
    }

    fn from_f64(value: f64) -> Self {
        value as f32
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    fn from_usize(n: usize) -> Self {
        n as f32
    }

    // In f64 and rounded once: within half an f32 ulp, bar the f64 result's own error.
    #[inline(always)]
    fn exp_vectorized(self) -> Self {
        math::exp(f64::from(self)) as f32
    }

    #[inline(always)]
    fn tanh_vectorized(self) -> Self {
        math::tanh(f64::from(self)) as f32
    }

    #[inline(always)]
    fn tanh_strip<const N: usize>(x: &[Self; N]) -> [Self; N] {
        math::tanh_strip(&x.map(f64::from)).map(|t| t as f32)
    }

    #[inline(always)]
    fn sigmoid_vectorized(self) -> Self {
        math::sigmoid(f64::from(self)) as f32
    }

    #[cfg(feature = "faer")]
    fn faer_matmul(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>) -> Option<Array2<Self>> {
        crate::gemm::faer_kernel::matmul_f32(a, b)
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";

    fn static_zero() -> &'static f64 {
        &0.0
    }

    fn with_workspace<R>(f: impl FnOnce(&mut Buffers<f64>) -> R) -> Option<R> {
        thread_local! {
            static BUFFERS: RefCell<Buffers<f64>> = const { RefCell::new(Buffers::new()) };
        }
        crate::workspace::with(&BUFFERS, f)
    }

    fn from_f64(value: f64) -> Self {
        value
    }

    fn to_f64(self) -> f64 {
        self
    }

    fn from_usize(n: usize) -> Self {
        n as f64
    }

    #[inline(always)]
    fn exp_vectorized(self) -> Self {
        math::exp(self)
    }

    #[inline(always)]
    fn tanh_vectorized(self) -> Self {
        math::tanh(self)
    }

    #[inline(always)]
    fn tanh_strip<const N: usize>(x: &[Self; N]) -> [Self; N] {
        math::tanh_strip(x)
    }

    #[inline(always)]
    fn sigmoid_vectorized(self) -> Self {
        math::sigmoid(self)
    }

    #[cfg(feature = "faer")]
    fn faer_matmul(a: ArrayView2<'_, Self>, b: ArrayView2<'_, Self>) -> Option<Array2<Self>> {
        crate::gemm::faer_kernel::matmul_f64(a, b)
    }
}
