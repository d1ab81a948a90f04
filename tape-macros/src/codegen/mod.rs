//! Codegen: IR in, tokens out. Never sees a `syn::Expr`: user code arrives as the IR's
//! verbatim tokens.
//!
//! Generated code reaches the runtime only through `::tape::__private`, and its locals use
//! mixed-site hygiene ([`idents`]). A node evaluated inside an arm of an `if` is held as an
//! `Option` (`None` where the arm did not run) and read through `taken(&v)?`.

pub mod blocks;
pub mod cse;
pub mod eager;
pub mod forward;
pub mod fuse;
pub mod grad_fn;
pub mod idents;
pub mod indexed;
pub mod reuse;
pub mod reverse;
pub mod schedule;
pub mod tape_struct;
pub mod vjp_fn;

use crate::ir::{NodeId, NodeKind, ParamKind, Tape, Verbatim};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};

/// The runtime, as generated function bodies name it: `__tape_rt`, which [`use_runtime`]
/// brings into scope at the top of each body. Three tokens instead of eight for
/// `::tape::__private`, on every one of a long function's thousands of calls: less for the
/// macro to emit and for rustc to parse and resolve.
pub fn runtime() -> TokenStream {
    let alias = idents::runtime_alias();
    quote!(#alias)
}

/// The runtime's full path, for what is outside a generated function's body (signatures,
/// items, the tape's rows).
pub fn runtime_path() -> TokenStream {
    quote!(::tape::__private)
}

/// `use ::tape::__private as __tape_rt;`: the first statement of every generated body that
/// names the runtime through [`runtime`].
pub fn use_runtime() -> TokenStream {
    let alias = idents::runtime_alias();
    quote!(use ::tape::__private as #alias;)
}

/// Whether a node's value local is an `Option` (it is evaluated inside a branch arm).
/// Conditions are plain `bool`s, `false` outside their arm.
pub fn is_optional(tape: &Tape, id: NodeId) -> bool {
    let node = tape.node(id);
    !node.guard.is_empty() && !matches!(node.kind, NodeKind::Cond(_))
}

/// Whether node `id` takes the scalar path: an elementwise op outside any branch whose
/// operands are all known scalars. Its forward and VJP call `ops::elem` on plain floats, with
/// no kernel, no `Result` and no slot bookkeeping beyond an `Option<F>`.
pub fn scalar_path(tape: &Tape, id: NodeId) -> bool {
    let node = tape.node(id);
    match &node.kind {
        NodeKind::Op { op, args, .. } => {
            node.scalar
                && op.elementwise
                && !op.checked
                && node.guard.is_empty()
                && args
                    .iter()
                    .all(|a| tape.node(*a).scalar && !is_optional(tape, *a))
        }
        _ => false,
    }
}

/// A scalar node's value, copied: `__tape_v3` (`*taken(&__tape_v3)?` inside a branch arm).
pub fn scalar_value(tape: &Tape, id: NodeId) -> TokenStream {
    if is_optional(tape, id) {
        let r = value_ref(tape, id);
        quote!((*#r))
    } else {
        let v = idents::value(id);
        quote!(#v)
    }
}

/// An expression that borrows node `id`'s value: `&__tape_v4`; `__tape_v0` for an array
/// parameter taken by reference (already one); `taken(&__tape_v9)?` inside a branch arm.
pub fn value_ref(tape: &Tape, id: NodeId) -> TokenStream {
    let v = idents::value(id);
    let rt = runtime();
    if is_optional(tape, id) {
        return quote!(#rt::taken(&#v)?);
    }
    match tape.node(id).kind {
        NodeKind::Param(i) if tape.params[i].kind == ParamKind::ArrayRef => quote!(#v),
        _ => quote!(&#v),
    }
}

/// Node `id`'s value as the user's code would hold it: the reference itself for a
/// by-reference array parameter, otherwise an owned copy.
pub fn value_as_written(tape: &Tape, id: NodeId) -> TokenStream {
    if let NodeKind::Param(i) = tape.node(id).kind {
        if tape.params[i].kind == ParamKind::ArrayRef {
            let v = idents::value(id);
            return quote!(#v);
        }
    }
    let r = value_ref(tape, id);
    quote!(::core::clone::Clone::clone(#r))
}

/// `{ let n = …; <tokens> }`: user code re-emitted at its own span, with the function's names
/// it reads bound to their node values (by reference where only a shape is read).
pub fn verbatim(tape: &Tape, code: &Verbatim) -> TokenStream {
    let tokens = &code.tokens;
    if code.captures.is_empty() {
        return tokens.clone();
    }
    // A computed value is a placeholder after a kernel failed: return that error first.
    let check = code
        .captures
        .iter()
        .any(|c| {
            matches!(
                tape.node(c.node).kind,
                NodeKind::Op { .. } | NodeKind::Call { .. } | NodeKind::Select { .. }
            )
        })
        .then(return_kept);
    let binds = code.captures.iter().map(|c| {
        let name = &c.ident;
        let value = if c.shape_only {
            value_ref(tape, c.node)
        } else {
            value_as_written(tape, c.node)
        };
        quote_spanned!(name.span()=> let #name = #value;)
    });
    quote!({ #check #(#binds)* #tokens })
}

/// Whether a node's guard holds: `(__tape_v3 && !__tape_v7)`, or `true` outside any `if`.
pub fn guard_holds(tape: &Tape, id: NodeId) -> TokenStream {
    let terms: Vec<TokenStream> = tape
        .node(id)
        .guard
        .iter()
        .map(|(cond, polarity)| {
            let c = idents::value(*cond);
            if *polarity { quote!(#c) } else { quote!(!#c) }
        })
        .collect();
    if terms.is_empty() {
        quote!(true)
    } else {
        quote!((#(#terms)&&*))
    }
}

/// `"z"`, or `""` for a node without a source name: a node's name as `keep` and `at!` take it.
pub fn name_literal(tape: &Tape, id: NodeId) -> TokenStream {
    let name = tape.node(id).name.as_deref().unwrap_or("");
    quote!(#name)
}

/// A fallible kernel call of node `id` in a body that keeps its first error
/// (`tape_runtime::keep`): `keep(call, 4, "z")`, the kernel's value or a placeholder after an
/// error.
pub fn kept(tape: &Tape, id: NodeId, call: TokenStream) -> TokenStream {
    let rt = runtime();
    let (index, name) = (id.0, name_literal(tape, id));
    quote!(#rt::keep(#call, #index, #name))
}

/// `let __tape_scope = keep::Scope::enter();`: the first statement of a body whose kernels
/// [`kept`] calls, claiming the thread's error slot until the body ends.
pub fn enter_scope() -> TokenStream {
    let (rt, scope) = (runtime(), idents::scope());
    quote!(let #scope = #rt::keep::Scope::enter();)
}

/// Returns the kept error, if a kernel failed: at the end of the body, and before code that
/// may misbehave on a placeholder (the user's expressions reading computed values, calls).
pub fn return_kept() -> TokenStream {
    let rt = runtime();
    let error = proc_macro2::Ident::new("__tape_error", proc_macro2::Span::mixed_site());
    quote! {
        if let ::core::option::Option::Some(#error) = #rt::keep::take() {
            return ::core::result::Result::Err(#error);
        }
    }
}

/// The function's parameters as written: `w: &Array2<f64>, x: f64`.
pub fn params(tape: &Tape) -> Vec<TokenStream> {
    tape.params
        .iter()
        .map(|p| {
            let (pname, ty) = (&p.name, &p.ty);
            quote!(#pname: #ty)
        })
        .collect()
}

/// `const` items of the body, re-emitted at the top of every generated function.
pub fn items(tape: &Tape) -> TokenStream {
    let items = &tape.items;
    quote!(#(#items)*)
}

/// Everything `#[differentiable]` adds next to the user's function.
pub fn generate(tape: &Tape) -> TokenStream {
    let (vis, name) = (&tape.vis, &tape.name);
    let marker = idents::marker(name);
    let marker = quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, dead_code)]
        #vis const #marker: () = ();
    };
    let grad = grad_fn::emit(tape);
    let vjp = vjp_fn::emit(tape);
    let recorded = tape_struct::emit(tape);
    quote!(#marker #grad #vjp #recorded)
}
