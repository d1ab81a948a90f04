//! The runtime of [tape](https://docs.rs/tape): what `#[differentiable]` generates code against.
//!
//! - [`Tensor`] and [`Value`]: scalars and `ndarray` arrays, one interface for both;
//! - [`ops`]: every op's forward kernel and its vector-Jacobian product, side by side;
//! - [`Acc`]: a parent's gradient slot (first contribution moved in, later ones added);
//! - [`TapeError`]: every failure, naming the node, the op and the shapes;
//! - [`AnyTensor`], [`NodeInfo`]: shape-erased values and the rows of a static tape;
//! - [`functions`]: the plain op functions the prelude exports;
//! - [`fuse`]: helpers for the fused elementwise loops of `_grad`;
//! - [`gemm`]: the matrix product behind `dot` (matrixmultiply; faer or OpenBLAS by feature);
//! - [`math`]: `exp`, `tanh` and the logistic function without libm calls, so loops vectorize;
//! - [`workspace`]: buffers of large matrix products, kept per thread between gradients;
//! - [`gradcheck`]: central differences in `f64`, for tests.
//!
//! Most users never name this crate: `tape::prelude` brings what a differentiable function
//! needs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// Links the system's OpenBLAS, which ndarray's `blas` feature calls through CBLAS.
#[cfg(feature = "blas")]
use blas_src as _;

pub mod accumulate;
pub mod any_tensor;
pub mod broadcast;
pub mod dynamic;
pub mod error;
pub mod float;
pub mod functions;
pub mod fuse;
pub mod gemm;
pub mod gradcheck;
pub mod graphviz;
pub mod keep;
pub mod math;
pub mod node;
pub mod ops;
pub mod reuse;
pub mod tape;
pub mod tensor;
pub mod workspace;

pub use accumulate::{
    Acc, acc_skip, acc_to, add_grad_all, add_grad_dense, grad_or_zeros, present, select_vjp, slot,
    slot_opt, sparse_from_dense, taken,
};
pub use any_tensor::{AnyTensor, Record, evaluated, record, record_opt, scalar_of};
pub use error::{NodeLabel, Result, TapeError};
pub use float::Float;
pub use keep::keep;
pub use node::NodeInfo;
pub use tape::{Accumulate, Tape, call_vjp, put_recorded, select_any_vjp, typed};
pub use tensor::{Input, Tensor, Value};

/// Return types that `_grad` can differentiate: `f32` and `f64`. A `#[differentiable]`
/// function that returns an array gets a `_grad` that fails to compile when called, with this
/// message.
#[diagnostic::on_unimplemented(
    message = "`_grad` differentiates a function that returns a float, but this one returns `{Self}`",
    label = "the function returns `{Self}`, not `f32` or `f64`",
    note = "call it from a differentiable function that reduces it to a scalar (`sum`, `mse`, …), \
            or seed its recorded tape: `FTape::record(…)?.backward_dense(FTape::OUTPUT, seed)`"
)]
pub trait ScalarOutput {
    /// What the stub `_grad` of a non-scalar function returns (it cannot be called).
    ///
    /// # Errors
    /// Always.
    fn not_scalar<T>() -> Result<T>;
}

impl ScalarOutput for f32 {
    fn not_scalar<T>() -> Result<T> {
        Err(TapeError::rank(
            "grad",
            "differentiates a scalar output",
            &[],
        ))
    }
}

impl ScalarOutput for f64 {
    fn not_scalar<T>() -> Result<T> {
        Err(TapeError::rank(
            "grad",
            "differentiates a scalar output",
            &[],
        ))
    }
}

/// What the stub `_grad` of a function with a non-scalar output would return.
#[derive(Debug)]
pub struct NotScalar;

/// A fallible call in generated code where an early return is wanted: its value, or its error
/// returned from the enclosing function, now naming the node: `at!(call(..), 4, "z")` (`""`
/// for a node without a source name). Straight-line kernel calls go through [`keep()`]
/// instead, which needs no branch out of the body; this is for calls of other differentiable
/// functions and their pullbacks, and the recorded tape's per-node VJPs. A plain `match` whose
/// error arm alone calls a non-generic function.
#[macro_export]
#[doc(hidden)]
macro_rules! at {
    ($result:expr, $id:expr, $name:expr $(,)?) => {
        match $result {
            ::core::result::Result::Ok(value) => value,
            ::core::result::Result::Err(error) => {
                return ::core::result::Result::Err($crate::located(error, $id, $name));
            }
        }
    };
}

/// Attaches the node an error happened at (generated code calls it through [`at!`] and
/// [`keep()`]): `name` is the node's source name, or `""` for a node without one.
#[cold]
#[inline(never)]
pub fn located(error: TapeError, id: usize, name: &'static str) -> TapeError {
    error.at_node(id, (!name.is_empty()).then_some(name))
}
