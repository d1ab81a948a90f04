//! The element types tape differentiates: `f32` and `f64`.

use ndarray::NdFloat;
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
}

impl Float for f32 {
    const NAME: &'static str = "f32";

    fn from_f64(value: f64) -> Self {
        value as f32
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }

    fn from_usize(n: usize) -> Self {
        n as f32
    }
}

impl Float for f64 {
    const NAME: &'static str = "f64";

    fn from_f64(value: f64) -> Self {
        value
    }

    fn to_f64(self) -> f64 {
        self
    }

    fn from_usize(n: usize) -> Self {
        n as f64
    }
}
