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
/// Next to `fn f(params) -> F`, unchanged, it generates `fn f_grad(params) ->
/// Result<FGrad, TapeError>` and `struct FGrad { value, <one field per differentiable
/// parameter> }`. Mark inputs that get no gradient with `#[no_grad]`. See the `tape` crate's
/// documentation for the supported syntax and ops.
#[proc_macro_attribute]
pub fn differentiable(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::differentiable(args.into(), item.into()).into()
}
