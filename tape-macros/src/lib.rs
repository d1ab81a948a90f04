//! The `#[differentiable]` attribute of [tape](https://docs.rs/tape).
//!
//! Three stages, one direction: `lower` turns the function into a static tape (`ir`),
//! `check` validates the signature, and `codegen` writes the gradient code. Use it through
//! the `tape` crate, which re-exports it with the runtime it generates code against.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod check;
mod codegen;
mod ctxt;
mod expand;
#[cfg(test)]
mod fuzz;
mod ir;
mod lower;
mod ops;

use proc_macro::TokenStream;

/// Generates reverse-mode gradient code for a function over `ndarray` arrays and floats.
///
/// Next to `fn f(params) -> F`, which stays as written, it generates:
///
/// - `fn f_grad(params) -> Result<FGrad, TapeError>` and `struct FGrad { value, <one field
///   per differentiable parameter, of its owned type> }`: the value and every gradient;
/// - `fn f_vjp(params)`: the value and a pullback from the output's cotangent (what a
///   differentiable function calling `f` runs; also for functions that return arrays);
/// - `struct FTape`: the static tape (`FTape::NODES`, `FTape::OUTPUT`) and
///   `FTape::record(params)`, one forward pass with every node's value, whose `tape::Tape`
///   methods return every node's cotangent.
///
/// Mark inputs that get no gradient with `#[no_grad]`. The body may use `let`, arithmetic,
/// ndarray methods (`dot`, `t`, `sum`, `exp`, …), the prelude's op functions, `for` loops with
/// bounds known at compile time, branches on non-differentiable values, `x[i]`, and calls to
/// other `#[differentiable]` functions; anything else is a compile error at its span that
/// says what is supported. The `tape` crate's README has the full tables.
#[proc_macro_attribute]
pub fn differentiable(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::differentiable(args.into(), item.into()).into()
}
