//! The op kernels: each op's forward and its vector-Jacobian product (VJP) side by side.
//!
//! | family | ops |
//! |---|---|
//! | [`arith`] | `add`, `sub`, `mul`, `div`, `neg` (operators `+ - * /` and unary `-`) |
//! | [`unary`] | `exp`, `ln`, `sqrt`, `powi`, `powf`, `abs`, `sin`, `cos`, `tanh`, `sigmoid`, `relu`, `softplus`, `gelu` |
//! | [`compare`] | `maximum`, `minimum`, `clamp` |
//! | [`linalg`] | `dot` (matrix·matrix, matrix·vector, vector·matrix, vector·vector), `transpose` (`t()`) |
//! | [`reduce`] | `sum`, `mean`, `sum_axis`, `mean_axis` |
//! | [`softmax`] | `softmax`, `log_softmax`, `logsumexp` (last axis) |
//! | [`loss`] | `mse`, `cross_entropy` |
//!
//! Every forward `op` returns `Result`: shape, rank, axis and domain errors are values, never
//! panics. Every `op_vjp` has the signature
//! `op_vjp(g, inputs…, &output, configs…, accs…)`: it takes the output's cotangent `g` by value
//! (so it can reuse its buffer), reads the inputs and the output it may need, and sends one
//! contribution per input to that input's [`Acc`], computing it only if wanted.

pub mod arith;
pub mod compare;
pub mod elem;
pub mod linalg;
pub mod loss;
pub mod reduce;
pub mod softmax;
pub mod unary;

use crate::accumulate::Acc;
use crate::broadcast::Broadcast;
use crate::error::Result;
use crate::tensor::{Tensor, Value, check_same_shape};

/// The VJP of an elementwise unary op: `x̄ = f(ḡ, x, y)` elementwise, written into `g`'s
/// buffer.
pub(crate) fn unary_vjp<T: Tensor>(
    op: &'static str,
    g: T::Owned,
    x: &T,
    y: &impl Tensor<Elem = T::Elem, Dim = T::Dim>,
    dx: Acc<'_, T::Owned>,
    f: impl Fn(T::Elem, T::Elem, T::Elem) -> T::Elem,
) -> Result<()> {
    dx.put_with(|| {
        check_same_shape(op, "cotangent and input differ", g.shape_of(), x.shape_of())?;
        check_same_shape(op, "output and input differ", y.shape_of(), x.shape_of())?;
        let mut g = g;
        g.update2(x.as_view(), y.as_view(), f);
        Ok(g)
    })
}

/// The VJP of a broadcasting binary elementwise op whose partials are `f(ḡ, a, b) = (ā, b̄)`
/// elementwise (`ops::elem`'s `op_vjp`), each summed back to its operand's shape and computed
/// only if wanted.
pub(crate) fn binary_vjp<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(
    op: &'static str,
    g: A::Out,
    a: &A,
    b: &B,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
    f: impl Fn(A::Elem, A::Elem, A::Elem) -> (A::Elem, A::Elem) + Copy,
) -> Result<()> {
    let (ga, gb) = share(g, da.wanted(), db.wanted());
    if let Some(g) = gb {
        db.put(A::grad_rhs(g, a, b, op, move |g, x, y| f(g, x, y).1)?)?;
    }
    if let Some(g) = ga {
        da.put(A::grad_lhs(g, a, b, op, move |g, x, y| f(g, x, y).0)?)?;
    }
    Ok(())
}

/// Hands `g` to up to two consumers, cloning only when both want it.
pub(crate) fn share<T: Clone>(g: T, first: bool, second: bool) -> (Option<T>, Option<T>) {
    match (first, second) {
        (true, true) => (Some(g.clone()), Some(g)),
        (true, false) => (Some(g), None),
        (false, true) => (None, Some(g)),
        (false, false) => (None, None),
    }
}

#[cfg(test)]
mod testing;
