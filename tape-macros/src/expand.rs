//! The expansion: lower → codegen; on error, the user's function unchanged plus
//! `compile_error!`, so the function keeps working and no secondary errors follow.

use crate::args::parse_args;
use crate::codegen;
use crate::lower::{is_no_grad, lower};
use proc_macro2::TokenStream;
use quote::quote;
use syn::{FnArg, ItemFn};

/// Expands `#[differentiable]` on `item`.
pub fn differentiable(args: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(_) => {
            let error = syn::Error::new(
                proc_macro2::Span::call_site(),
                "`#[differentiable]` applies to a free function (`fn name(params) -> f64 { … }`)",
            );
            let error = error.to_compile_error();
            return quote!(#error #item);
        }
    };
    let original = strip_no_grad(func.clone());
    let generated = parse_args(args)
        .and_then(|_| lower(func))
        .map(|tape| codegen::generate(&tape));
    match generated {
        Ok(generated) => quote!(#original #generated),
        Err(error) => {
            let error = error.to_compile_error();
            quote!(#original #error)
        }
    }
}

/// The user's function as written, minus the `#[no_grad]` markers rustc would not know.
fn strip_no_grad(mut func: ItemFn) -> ItemFn {
    for input in &mut func.sig.inputs {
        if let FnArg::Typed(pt) = input {
            pt.attrs.retain(|a| !is_no_grad(a));
        }
    }
    func
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prints an expansion for inspection: `TAPE_EXPAND=1 cargo test -p tape-macros expansion
    /// -- --nocapture`, or with `TAPE_EXPAND=path/to/fn.rs` that file's function.
    #[test]
    fn expansion_of_a_small_function() {
        let out = differentiable(
            TokenStream::new(),
            quote!(
                fn square(s: f64) -> f64 {
                    s * s
                }
            ),
        );
        let text = out.to_string();
        assert!(
            text.contains("square_grad") && text.contains("square_vjp"),
            "{text}"
        );
        if let Some(what) = std::env::var_os("TAPE_EXPAND") {
            match std::fs::read_to_string(&what) {
                Ok(source) => {
                    let item: TokenStream = source.parse().expect("the file parses as tokens");
                    println!("{}", differentiable(TokenStream::new(), item));
                }
                Err(_) => println!("{text}"),
            }
        }
    }
}
