//! The attribute's arguments: `#[differentiable]` takes none yet.

use proc_macro2::TokenStream;

/// The parsed attribute arguments.
pub struct Args;

/// Parses the tokens inside `#[differentiable(...)]`.
pub fn parse_args(tokens: TokenStream) -> syn::Result<Args> {
    if let Some(first) = tokens.into_iter().next() {
        return Err(syn::Error::new(
            first.span(),
            "expected no arguments: write `#[differentiable]`; mark inputs that get no gradient \
             with `#[no_grad]` on the parameter",
        ));
    }
    Ok(Args)
}
