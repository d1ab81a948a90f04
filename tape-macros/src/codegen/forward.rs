//! The forward pass, shared by `f_grad`, `f_vjp` and `FTape::record`: one `let` per node.
//!
//! Input: a node of the tape, e.g. node 4 = `dot(x, w)` named `z`.
//! Output: `let __tape_v4 = keep(ops::linalg::dot(__tape_v2, __tape_v0), 4, "z");`,
//! the kernel call spanned at the user's expression so that type errors point there. A node
//! inside an arm of an `if` becomes `let __tape_v9 = if <guard> { Some(…) } else { None };`.

use super::{
    guard_holds, idents, is_optional, kept, name_literal, return_kept, runtime, scalar_path,
    scalar_value, value_as_written, value_ref, verbatim,
};
use crate::ir::{CallArg, NodeId, NodeKind, Tape};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// What the forward pass is for: calls keep their pullbacks for `_grad` and `_vjp`, and record
/// their callee's tape for `FTape`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `f_grad`: calls keep their pullbacks.
    Grad,
    /// `f_vjp`: calls keep only their values (the pullback, which may borrow this function's
    /// locals, cannot escape; the reverse pass calls the callee again).
    Vjp,
    /// `FTape::record`.
    Record,
}

/// The arguments of a call as the user passed them.
pub fn call_args(tape: &Tape, args: &[CallArg]) -> Vec<TokenStream> {
    args.iter()
        .map(|a| {
            if a.by_ref {
                value_ref(tape, a.node)
            } else {
                value_as_written(tape, a.node)
            }
        })
        .collect()
}

/// Wraps a node's value expression in its guard: `if <guard> { Some(e) } else { None }`.
fn guarded(tape: &Tape, id: NodeId, value: TokenStream) -> TokenStream {
    if is_optional(tape, id) {
        let holds = guard_holds(tape, id);
        quote!(if #holds { ::core::option::Option::Some(#value) } else { ::core::option::Option::None })
    } else {
        value
    }
}

/// A constant argument as a kernel takes it (by value).
pub fn config_value(tape: &Tape, id: NodeId, index: usize) -> TokenStream {
    let c = idents::config(id, index);
    if is_optional(tape, id) {
        let rt = runtime();
        quote!(*#rt::taken(&#c)?)
    } else {
        quote!(#c)
    }
}

/// `let __tape_c{id}_{i} = …;`: the locals of a node's configs (`powi`'s exponent, `x[i]`'s
/// index).
pub fn config_binds(tape: &Tape, id: NodeId) -> Vec<TokenStream> {
    let NodeKind::Op { configs, .. } = &tape.node(id).kind else {
        return Vec::new();
    };
    let binds = configs.iter().enumerate().map(|(i, c)| {
        let cid = idents::config(id, i);
        let value = guarded(tape, id, verbatim(tape, c));
        quote!(let #cid = #value;)
    });
    binds.collect()
}

/// `let __tape_vK = …;` (and the locals a node needs besides its value) for one node.
pub fn emit_forward(tape: &Tape, id: NodeId, purpose: Purpose) -> TokenStream {
    let rt = runtime();
    let node = tape.node(id);
    let v = idents::value(id);
    let index = id.0;
    let node_name = name_literal(tape, id);
    match &node.kind {
        NodeKind::Param(i) => {
            let p = &tape.params[*i];
            let pname = &p.name;
            quote!(let #v = #pname;)
        }
        NodeKind::Const(code) => {
            // A float literal takes the function's float type, so `2.0 * x` needs no inference.
            let value = if code.float_literal {
                let elem = tape.elem.tokens();
                let literal = verbatim(tape, code);
                let typed = syn::Ident::new("__tape_literal", Span::mixed_site());
                quote!({ let #typed: #elem = #literal; #typed })
            } else {
                verbatim(tape, code)
            };
            let value = guarded(tape, id, value);
            quote!(let #v = #value;)
        }
        NodeKind::Cond(code) => {
            let test = verbatim(tape, code);
            if node.guard.is_empty() {
                quote!(let #v: bool = #test;)
            } else {
                let holds = guard_holds(tape, id);
                quote!(let #v: bool = #holds && { #test };)
            }
        }
        NodeKind::Select { cond, then, other } => {
            let c = idents::value(*cond);
            let (t, o) = (value_ref(tape, *then), value_ref(tape, *other));
            let value = quote! {
                if #c { ::core::clone::Clone::clone(#t) } else { ::core::clone::Clone::clone(#o) }
            };
            let value = guarded(tape, id, value);
            quote!(let #v = #value;)
        }
        NodeKind::Op { op, args, configs } => {
            let kernel = op.kernel_ident();
            let family = syn::Ident::new(op.family, Span::call_site());
            let config_binds = config_binds(tape, id);
            let config_values = (0..configs.len()).map(|i| config_value(tape, id, i));
            if scalar_path(tape, id) {
                let operands = args.iter().map(|a| scalar_value(tape, *a));
                let call = quote_spanned! {node.span=>
                    #rt::ops::elem::#kernel(#(#operands,)* #(#config_values,)*)
                };
                return quote! {
                    #(#config_binds)*
                    let #v = #call;
                };
            }
            let operands = args.iter().map(|a| value_ref(tape, *a));
            let call = quote_spanned! {node.span=>
                #rt::ops::#family::#kernel(#(#operands,)* #(#config_values,)*)
            };
            let value = guarded(tape, id, kept(tape, id, call));
            quote! {
                #(#config_binds)*
                let #v = #value;
            }
        }
        NodeKind::Call { path, args } => {
            let marker = idents::callee_marker_path(path);
            let check = quote_spanned!(node.span=> let _: () = #marker;);
            let vjp = idents::callee_vjp_path(path);
            let p = idents::pullback(id);
            let arg_values = call_args(tape, args);
            let call = quote_spanned!(node.span=> #vjp(#(#arg_values),*));
            let holds = guard_holds(tape, id);
            let forward = match (purpose, is_optional(tape, id)) {
                (Purpose::Grad, false) => quote! {
                    let (#v, #p) = #rt::at!(#call, #index, #node_name);
                },
                (Purpose::Grad, true) => quote! {
                    let (#v, #p) = if #holds {
                        let (v, p) = #rt::at!(#call, #index, #node_name);
                        (::core::option::Option::Some(v), ::core::option::Option::Some(p))
                    } else {
                        (::core::option::Option::None, ::core::option::Option::None)
                    };
                },
                (Purpose::Vjp, _) => {
                    let value = guarded(tape, id, quote!(#rt::at!(#call, #index, #node_name).0));
                    quote!(let #v = #value;)
                }
                (Purpose::Record, _) => {
                    let callee = idents::callee_tape_path(path);
                    let elem = tape.elem.tokens();
                    let s = idents::callee_tape(id);
                    let record =
                        quote_spanned!(node.span=> #callee::<#elem>::record(#(#arg_values),*));
                    let value = guarded(tape, id, quote!(#rt::at!(#call, #index, #node_name).0));
                    quote! {
                        let #v = #value;
                        let #s = if #holds {
                            ::core::option::Option::Some(#rt::at!(#record, #index, #node_name))
                        } else {
                            ::core::option::Option::None
                        };
                    }
                }
            };
            // The callee runs its own code on the arguments: no placeholders, and its errors
            // after an earlier one here.
            let failed = return_kept();
            quote!(#failed #check #forward)
        }
    }
}

/// The static tape as a Markdown table, for the generated docs.
pub fn tape_table(tape: &Tape) -> String {
    const MAX_ROWS: usize = 64;
    let mut table = String::from("| id | name | op | parents | grad |\n|---|---|---|---|---|\n");
    for node in tape.nodes.iter().take(MAX_ROWS) {
        let parents: Vec<String> = node.parents().iter().map(|p| p.0.to_string()).collect();
        table.push_str(&format!(
            "| {} | {} | `{}` | {} | {} |\n",
            node.id.0,
            node.name
                .as_deref()
                .map(|n| format!("`{n}`"))
                .unwrap_or_default(),
            node.op_name(),
            parents.join(", "),
            if node.requires_grad { "yes" } else { "" },
        ));
    }
    if tape.nodes.len() > MAX_ROWS {
        table.push_str(&format!(
            "| … | | | | |\n\n({} more nodes)\n",
            tape.nodes.len() - MAX_ROWS
        ));
    }
    table
}
