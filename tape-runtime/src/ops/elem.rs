//! The per-element math of every elementwise op: its value and its partial derivatives, on
//! one float.
//!
//! The array kernels of [`arith`](super::arith), [`unary`](super::unary) and
//! [`compare`](super::compare) map these over their operands, and generated code calls them
//! directly where every operand is a scalar (and in fused elementwise loops), so each formula
//! is written once.
//!
//! Binary ops have `op(a, b)` and `op_vjp(g, a, b) -> (ā, b̄)`; unary ops have `op(x)` and
//! `op_vjp(g, x, y) -> x̄`, reading the output `y` where that is cheaper than recomputing.
//! All are total: `ln` of a non-positive float is NaN or −∞ here, and the checked kernel
//! [`unary::ln`](super::unary::ln) is what reports it.

use crate::float::Float;

/// `a + b`.
#[inline(always)]
pub fn add<F: Float>(a: F, b: F) -> F {
    a + b
}

/// `(ḡ, ḡ)`.
#[inline(always)]
pub fn add_vjp<F: Float>(g: F, _a: F, _b: F) -> (F, F) {
    (g, g)
}

/// `a − b`.
#[inline(always)]
pub fn sub<F: Float>(a: F, b: F) -> F {
    a - b
}

/// `(ḡ, −ḡ)`.
#[inline(always)]
pub fn sub_vjp<F: Float>(g: F, _a: F, _b: F) -> (F, F) {
    (g, -g)
}

/// `a·b`.
#[inline(always)]
pub fn mul<F: Float>(a: F, b: F) -> F {
    a * b
}

/// `(ḡ·b, ḡ·a)`.
#[inline(always)]
pub fn mul_vjp<F: Float>(g: F, a: F, b: F) -> (F, F) {
    (g * b, g * a)
}

/// `a / b`.
#[inline(always)]
pub fn div<F: Float>(a: F, b: F) -> F {
    a / b
}

/// `(ḡ / b, −ḡ·(a/b)/b)`: dividing twice rather than by `b²`, which would overflow for
/// `|b| > 1e154` where `a/b` is still finite.
#[inline(always)]
pub fn div_vjp<F: Float>(g: F, a: F, b: F) -> (F, F) {
    (g / b, -g * (a / b) / b)
}

/// The share of `ḡ` that goes to `x` in a max or min against `other`: all of it if `x` wins,
/// none if it loses, half at a tie.
#[inline(always)]
fn winner_share<F: Float>(x: F, other: F, wins: bool) -> F {
    if x == other {
        F::from_f64(0.5)
    } else if wins {
        F::one()
    } else {
        F::zero()
    }
}

/// `max(a, b)` (`b` if `a` is NaN).
#[inline(always)]
pub fn maximum<F: Float>(a: F, b: F) -> F {
    if b > a { b } else { a }
}

/// `(ḡ·[a > b], ḡ·[b > a])`, each `½ḡ` at a tie.
#[inline(always)]
pub fn maximum_vjp<F: Float>(g: F, a: F, b: F) -> (F, F) {
    (g * winner_share(a, b, a > b), g * winner_share(b, a, b > a))
}

/// `min(a, b)`.
#[inline(always)]
pub fn minimum<F: Float>(a: F, b: F) -> F {
    if b < a { b } else { a }
}

/// `(ḡ·[a < b], ḡ·[b < a])`, each `½ḡ` at a tie.
#[inline(always)]
pub fn minimum_vjp<F: Float>(g: F, a: F, b: F) -> (F, F) {
    (g * winner_share(a, b, a < b), g * winner_share(b, a, b < a))
}

/// `−x`.
#[inline(always)]
pub fn neg<F: Float>(x: F) -> F {
    -x
}

/// `−ḡ`.
#[inline(always)]
pub fn neg_vjp<F: Float>(g: F, _x: F, _y: F) -> F {
    -g
}

/// `eˣ` (vectorizable, within 1 ulp: [`math::exp`](crate::math::exp)).
#[inline(always)]
pub fn exp<F: Float>(x: F) -> F {
    x.exp_vectorized()
}

/// `ḡ·y`.
#[inline(always)]
pub fn exp_vjp<F: Float>(g: F, _x: F, y: F) -> F {
    g * y
}

/// `eˣ` as `f64::exp` computes it (libm), for `x.exp()`: what the user's own function gets.
#[inline(always)]
pub fn exp_std<F: Float>(x: F) -> F {
    x.exp()
}

/// As [`exp_vjp`].
#[inline(always)]
pub fn exp_std_vjp<F: Float>(g: F, x: F, y: F) -> F {
    exp_vjp(g, x, y)
}

/// `ln x`.
#[inline(always)]
pub fn ln<F: Float>(x: F) -> F {
    x.ln()
}

/// `ḡ / x`.
#[inline(always)]
pub fn ln_vjp<F: Float>(g: F, x: F, _y: F) -> F {
    g / x
}

/// `√x`.
#[inline(always)]
pub fn sqrt<F: Float>(x: F) -> F {
    x.sqrt()
}

/// `ḡ / (2y)` for `x > 0`, and `0` for `x ≤ 0` (a subgradient at 0 instead of ∞, and no NaN
/// from the negative half-line).
#[inline(always)]
pub fn sqrt_vjp<F: Float>(g: F, x: F, y: F) -> F {
    if x > F::zero() {
        g / (F::from_f64(2.0) * y)
    } else {
        F::zero()
    }
}

/// `xⁿ`.
#[inline(always)]
pub fn powi<F: Float>(x: F, n: i32) -> F {
    x.powi(n)
}

/// `ḡ·n·xⁿ⁻¹`, and `0` for `n = 0`.
#[inline(always)]
pub fn powi_vjp<F: Float>(g: F, x: F, _y: F, n: i32) -> F {
    if n == 0 {
        F::zero()
    } else {
        g * F::from_f64(f64::from(n)) * x.powi(n - 1)
    }
}

/// `xᶜ`.
#[inline(always)]
pub fn powf<F: Float>(x: F, c: F) -> F {
    x.powf(c)
}

/// `ḡ·c·xᶜ⁻¹`, and `0` for `c = 0`.
#[inline(always)]
pub fn powf_vjp<F: Float>(g: F, x: F, _y: F, c: F) -> F {
    if c == F::zero() {
        F::zero()
    } else {
        g * c * x.powf(c - F::one())
    }
}

/// `|x|`.
#[inline(always)]
pub fn abs<F: Float>(x: F) -> F {
    x.abs()
}

/// `ḡ·sign(x)`, with `abs′(0) = 0`.
#[inline(always)]
pub fn abs_vjp<F: Float>(g: F, x: F, _y: F) -> F {
    if x > F::zero() {
        g
    } else if x < F::zero() {
        -g
    } else {
        F::zero()
    }
}

/// `sin x`.
#[inline(always)]
pub fn sin<F: Float>(x: F) -> F {
    x.sin()
}

/// `ḡ·cos x`.
#[inline(always)]
pub fn sin_vjp<F: Float>(g: F, x: F, _y: F) -> F {
    g * x.cos()
}

/// `cos x`.
#[inline(always)]
pub fn cos<F: Float>(x: F) -> F {
    x.cos()
}

/// `−ḡ·sin x`.
#[inline(always)]
pub fn cos_vjp<F: Float>(g: F, x: F, _y: F) -> F {
    -g * x.sin()
}

/// `tanh x` (vectorizable, within 2 ulp: [`math::tanh`](crate::math::tanh)).
#[inline(always)]
pub fn tanh<F: Float>(x: F) -> F {
    x.tanh_vectorized()
}

/// `ḡ·(1 − y²)`.
#[inline(always)]
pub fn tanh_vjp<F: Float>(g: F, _x: F, y: F) -> F {
    g * (F::one() - y * y)
}

/// `tanh x` as `f64::tanh` computes it (libm), for `x.tanh()`.
#[inline(always)]
pub fn tanh_std<F: Float>(x: F) -> F {
    x.tanh()
}

/// As [`tanh_vjp`].
#[inline(always)]
pub fn tanh_std_vjp<F: Float>(g: F, x: F, y: F) -> F {
    tanh_vjp(g, x, y)
}

/// `1 / (1 + e⁻ˣ)`, without overflow for either sign (vectorizable:
/// [`math::sigmoid`](crate::math::sigmoid)).
#[inline(always)]
pub fn sigmoid<F: Float>(x: F) -> F {
    x.sigmoid_vectorized()
}

/// `ḡ·y·(1 − y)`.
#[inline(always)]
pub fn sigmoid_vjp<F: Float>(g: F, _x: F, y: F) -> F {
    g * y * (F::one() - y)
}

/// `max(x, 0)`.
#[inline(always)]
pub fn relu<F: Float>(x: F) -> F {
    if x > F::zero() { x } else { F::zero() }
}

/// `ḡ` where `x > 0`, else `0` (`relu′(0) = 0`, as PyTorch).
#[inline(always)]
pub fn relu_vjp<F: Float>(g: F, x: F, _y: F) -> F {
    if x > F::zero() { g } else { F::zero() }
}

/// `ln(1 + eˣ)` as `max(x, 0) + ln(1 + e^−|x|)`: no overflow for large `x`, no precision
/// lost for very negative `x`.
#[inline(always)]
pub fn softplus<F: Float>(x: F) -> F {
    x.max(F::zero()) + (-x.abs()).exp().ln_1p()
}

/// `ḡ·σ(x)`.
#[inline(always)]
pub fn softplus_vjp<F: Float>(g: F, x: F, _y: F) -> F {
    g * sigmoid(x)
}

/// `√(2/π)`, the scale inside GELU's tanh approximation.
const GELU_K: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of GELU's tanh approximation.
const GELU_C: f64 = 0.044_715;

/// `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`.
#[inline(always)]
pub fn gelu<F: Float>(x: F) -> F {
    let (k, c, half) = (F::from_f64(GELU_K), F::from_f64(GELU_C), F::from_f64(0.5));
    half * x * (F::one() + tanh(k * (x + c * x * x * x)))
}

/// With `t = tanh(√(2/π)(x + 0.044715x³))`:
/// `ḡ·(½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²))`.
#[inline(always)]
pub fn gelu_vjp<F: Float>(g: F, x: F, _y: F) -> F {
    let (k, c, half) = (F::from_f64(GELU_K), F::from_f64(GELU_C), F::from_f64(0.5));
    let (one, three) = (F::one(), F::from_f64(3.0));
    let t = tanh(k * (x + c * x * x * x));
    g * (half * (one + t) + half * x * (one - t * t) * k * (one + three * c * x * x))
}

/// `min(max(x, lo), hi)` for bounds already checked to satisfy `lo ≤ hi`.
#[inline(always)]
pub fn clamp<F: Float>(x: F, lo: F, hi: F) -> F {
    if x < lo {
        lo
    } else if x > hi {
        hi
    } else {
        x
    }
}

/// `ḡ` strictly inside `(lo, hi)`, `0` at and beyond the bounds.
#[inline(always)]
pub fn clamp_vjp<F: Float>(g: F, x: F, _y: F, lo: F, hi: F) -> F {
    if x > lo && x < hi { g } else { F::zero() }
}

/// The whole reverse step of a scalar `a + b`: its cotangent, if one reached it, added to
/// both operands' slots (`a`'s first). Generated code calls it for running sums: one call
/// where [`add_vjp`] and two [`accumulate`]s make three, each a cost to type-check.
#[inline(always)]
pub fn add_back<F: Float>(g: Option<F>, da: &mut Option<F>, db: &mut Option<F>) {
    if let Some(g) = g {
        accumulate(da, g);
        accumulate(db, g);
    }
}

/// [`add_back`] for `a − b`: `b` receives `−ḡ`.
#[inline(always)]
pub fn sub_back<F: Float>(g: Option<F>, da: &mut Option<F>, db: &mut Option<F>) {
    if let Some(g) = g {
        accumulate(da, g);
        accumulate(db, -g);
    }
}

/// Adds a scalar contribution to a scalar gradient slot: moved into an empty one, added to a
/// filled one.
#[inline(always)]
pub fn accumulate<F: Float>(slot: &mut Option<F>, contribution: F) {
    *slot = Some(match *slot {
        Some(total) => total + contribution,
        None => contribution,
    });
}

#[cfg(test)]
mod tests {
    use super::{add_back, sub_back};

    #[test]
    fn sums_pass_their_cotangent_on_into_empty_and_filled_slots() {
        let (mut a, mut b) = (None, Some(1.0));
        add_back(Some(2.0), &mut a, &mut b);
        assert_eq!((a, b), (Some(2.0), Some(3.0)));
        sub_back(Some(0.5), &mut a, &mut b);
        assert_eq!((a, b), (Some(2.5), Some(2.5)));
        // Without a cotangent nothing changes, not even an empty slot.
        let mut c = None;
        sub_back(None, &mut a, &mut c);
        assert_eq!((a, c), (Some(2.5), None));
    }
}
