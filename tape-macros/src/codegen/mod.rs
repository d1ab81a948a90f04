//! Codegen: IR in, tokens out. Never sees a `syn::Expr`: user code arrives as the IR's
//! verbatim tokens.
//!
//! Generated code reaches the runtime only through `::tape::__private`, and its locals use
//! mixed-site hygiene ([`idents`]).

pub mod forward;
pub mod grad_fn;
pub mod idents;
pub mod tape_struct;

use crate::ir::{NodeId, NodeKind, ParamKind, Tape, Verbatim};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

/// The runtime, as generated code names it.
pub fn runtime() -> TokenStream {
    quote!(::tape::__private)
}

/// An expression that borrows node `id`'s value: `&__tape_v4`, or `__tape_v0` for an array
/// parameter (already a reference).
pub fn value_ref(tape: &Tape, id: NodeId) -> TokenStream {
    let v = idents::value(id);
    match tape.node(id).kind {
        NodeKind::Param(i)
            if matches!(
                tape.params[i].kind,
                ParamKind::ArrayRef | ParamKind::ArrayOwned
            ) =>
        {
            quote!(#v)
        }
        _ => quote!(&#v),
    }
}

/// `{ let n = n_value.clone(); <tokens> }`: user code re-emitted at its own span, with the
/// function's names it reads bound to their node values.
pub fn verbatim(code: &Verbatim) -> TokenStream {
    let tokens = &code.tokens;
    if code.captures.is_empty() {
        return tokens.clone();
    }
    let binds = code.captures.iter().map(|c| {
        let (name, v) = (&c.ident, idents::value(c.node));
        if c.shape_only {
            quote_spanned!(name.span()=> let #name = &#v;)
        } else {
            quote_spanned!(name.span()=> let #name = ::core::clone::Clone::clone(&#v);)
        }
    });
    quote!({ #(#binds)* #tokens })
}

/// `Some("z")` or `None`: a node's name as generated code passes it to errors.
pub fn name_literal(tape: &Tape, id: NodeId) -> TokenStream {
    match &tape.node(id).name {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    }
}

/// Everything `#[differentiable]` adds next to the user's function.
pub fn generate(tape: &Tape) -> TokenStream {
    let grad = grad_fn::emit(tape);
    let recorded = tape_struct::emit(tape);
    quote!(#grad #recorded)
}
