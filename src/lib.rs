//! # tape
//!
//! Compile-time reverse-mode automatic differentiation for Rust functions over `ndarray`
//! arrays and floats.
//!
//! ```
//! use tape::prelude::*;
//!
//! #[differentiable]
//! fn loss(w: &Array2<f64>, b: &Array1<f64>, #[no_grad] x: &Array2<f64>, #[no_grad] y: &Array2<f64>) -> f64 {
//!     let z = x.dot(w) + b;
//!     let h = tanh(&z);
//!     mse(&h, y)
//! }
//!
//! let (w, b) = (array![[0.5], [-0.25]], array![0.1]);
//! let (x, y) = (array![[1.0, 2.0], [3.0, 4.0]], array![[0.2], [0.4]]);
//! let g = loss_grad(&w, &b, &x, &y)?;
//! assert_eq!(g.value, loss(&w, &b, &x, &y));   // the function itself is unchanged
//! assert_eq!(g.w.shape(), w.shape());          // one gradient per differentiable parameter
//! # Ok::<(), tape::TapeError>(())
//! ```
//!
//! `#[differentiable]` lowers the function to a *static tape* (a fixed list of nodes whose ids
//! are decided at compile time) and writes its reverse sweep as straight-line Rust: one block
//! per node, no closures, no runtime graph. The function itself is emitted unchanged.
//!
//! Next to `fn f(params) -> F` it generates:
//!
//! - `fn f_grad(params) -> Result<FGrad, TapeError>`: the value and the gradient of every
//!   differentiable parameter, each of the parameter's own type and shape (zeros where the
//!   output does not depend on it);
//! - `struct FGrad { pub value: F, pub <param>: <owned param type>, … }`.
//!
//! Parameters marked `#[no_grad]`, integer parameters and literal constants get no gradient.
//! See the README for the supported syntax and ops, and [`functions`] for each op's forward
//! and VJP.
//!
//! ## A tour
//!
//! - [`differentiable`], the attribute, and [`prelude`], everything the function's body
//!   needs: ndarray's array types, the op functions (`tanh`, `relu`, `softmax`, `mse`,
//!   `cross_entropy`, …) and [`TapeError`].
//! - What the attribute generates next to `fn loss`:
//!   - `loss_grad(params) -> Result<LossGrad, TapeError>`, the fast path: value and gradients;
//!   - `loss_vjp(params)`: the value and a pullback from any output cotangent (what a
//!     differentiable caller of `loss` runs; it also serves functions that return arrays);
//!   - `LossTape`: the static tape (`LossTape::NODES`, one [`NodeInfo`] per node) and
//!     `LossTape::record(params)`, one forward pass with every node's value kept.
//! - [`Tape`], implemented by every recorded tape: the backward family
//!   ([`Tape::backward_dense`] and its variants) returns every node's cotangent, not just the
//!   parameters'; [`Tape::to_dot`] and [`graphviz`] draw the tape with Graphviz.
//! - [`functions`]: each op's forward math, VJP, PyTorch and JAX equivalents and an example;
//!   [`ops`]: the checked kernels and VJPs the generated code calls, one module per family.
//! - [`gradcheck`]: central differences and relative errors, to test a gradient of your own.
//! - [`TapeError`]: what a kernel reports (the op, the shapes, the node and its source name).
//!   Generated code never panics on bad input.
//! - Cargo features: `faer` (faer's matrix product) and `blas` (the system's OpenBLAS through
//!   ndarray); the default is ndarray's own `dot`.
//!
//! The repository's `examples/` train a network on the iris flowers (`train`), show the
//! macro's output written by hand (`quickstart_expanded`), print every cotangent of a tape
//! (`inspect_cotangents`) and draw one (`tape_graph`).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate self as tape;

pub use ndarray;
pub use tape_macros::differentiable;
pub use tape_runtime::{
    Acc, Accumulate, AnyTensor, Float, Input, NodeInfo, NodeLabel, Tape, TapeError, Tensor, Value,
    add_grad_all, add_grad_dense, functions, gradcheck, graphviz, ops, sparse_from_dense,
    workspace,
};

/// Everything a differentiable function needs: the attribute, the op functions, the runtime
/// types and ndarray's array types.
pub mod prelude {
    pub use crate::differentiable;
    pub use ndarray::{
        Array, Array0, Array1, Array2, Array3, Array4, Array5, Array6, ArrayD, ArrayView1,
        ArrayView2, ArrayViewD, Axis, Ix0, Ix1, Ix2, Ix3, Ix4, Ix5, Ix6, IxDyn, array,
    };
    pub use tape_runtime::functions::*;
    pub use tape_runtime::{AnyTensor, Float, NodeInfo, Tape, TapeError};
}

/// The README's examples, run as doctests by `cargo test`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// What generated code calls. Not a public API: it may change in any release.
#[doc(hidden)]
pub mod __private {
    pub use tape_runtime::{
        Acc, Accumulate, AnyTensor, NodeInfo, NotScalar, Record, ScalarOutput, Tape, TapeError,
        Tensor, acc_skip, acc_to, at, call_vjp, dynamic, evaluated, fuse, grad_or_zeros, keep, ops,
        present, put_recorded, record, record_opt, reuse, scalar_of, select_any_vjp, select_vjp,
        slot, slot_opt, taken, typed,
    };
}
