//! The fast path: `fn f_grad(params) -> Result<FGrad, TapeError>` and `struct FGrad`.
//!
//! Input:
//!
//! ```text
//! #[differentiable]
//! pub fn loss(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> f64 {
//!     let z = x.dot(w);
//!     z.sum()
//! }
//! ```
//!
//! Output (next to the unchanged `loss`):
//!
//! ```text
//! pub struct LossGrad { pub value: f64, pub w: Array2<f64> }
//!
//! pub fn loss_grad(w: &Array2<f64>, x: &Array2<f64>) -> Result<LossGrad, TapeError> {
//!     // forward: one `let` per node
//!     let __tape_v0 = w;
//!     let __tape_v1 = x;
//!     let __tape_v2 = at(ops::linalg::dot(__tape_v1, __tape_v0), 2, Some("z"))?;
//!     let __tape_v3 = at(ops::reduce::sum(&__tape_v2), 3, None)?;
//!     // reverse: the output holds the seed; one slot per reached node
//!     let mut __tape_g3 = Some(one::<f64>());
//!     let mut __tape_g2 = None;
//!     let mut __tape_g0 = None;
//!     // one block per reached op, in reverse id order
//!     if let Some(__tape_g) = __tape_g3 {
//!         at(ops::reduce::sum_vjp(__tape_g, &__tape_v2, &__tape_v3, Acc::to(&mut __tape_g2)), 3, None)?;
//!     }
//!     if let Some(__tape_g) = __tape_g2 {
//!         at(ops::linalg::dot_vjp(__tape_g, __tape_v1, __tape_v0, &__tape_v2,
//!                                 Acc::skip(), Acc::to(&mut __tape_g0)), 2, Some("z"))?;
//!     }
//!     Ok(LossGrad { value: __tape_v3, w: grad_or_zeros(__tape_g0, __tape_v0) })
//! }
//! ```
//!
//! Nodes that cannot reach the output get no slot and no block; a parameter that does not
//! reach it gets zeros. Operands that need no gradient get `Acc::skip()`, so their VJP branch
//! is never computed.

use super::{forward, idents, name_literal, runtime, value_ref};
use crate::ir::{NodeId, NodeKind, Tape};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// `struct FGrad` and `fn f_grad`.
pub fn emit(tape: &Tape) -> TokenStream {
    let strukt = emit_struct(tape);
    let func = emit_fn(tape);
    quote!(#strukt #func)
}

fn emit_struct(tape: &Tape) -> TokenStream {
    let (vis, name, ret) = (&tape.vis, &tape.name, &tape.ret);
    let strukt = idents::grad_struct(name);
    let grad_fn = idents::grad_fn(name);
    let doc = format!("The value of [`{name}`] and its gradient, returned by [`{grad_fn}`].");
    let value_doc = format!("The value of `{name}` at the inputs.");
    let fields = tape.params.iter().filter(|p| p.differentiable()).map(|p| {
        let (pname, ty) = (&p.name, &p.owned_ty);
        let doc = format!(
            "`∂{name}/∂{pname}`: the gradient with respect to `{pname}`, of its type and shape \
             (zeros where `{name}` does not depend on it)."
        );
        quote!(#[doc = #doc] pub #pname: #ty,)
    });
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq)]
        #[allow(dead_code)]
        #vis struct #strukt {
            #[doc = #value_doc]
            pub value: #ret,
            #(#fields)*
        }
    }
}

fn emit_fn(tape: &Tape) -> TokenStream {
    let (vis, name) = (&tape.vis, &tape.name);
    let (generics, where_clause) = &tape.generics;
    let rt = runtime();
    let strukt = idents::grad_struct(name);
    let grad_fn = idents::grad_fn(name);
    let params = tape.params.iter().map(|p| {
        let (pname, ty) = (&p.name, &p.ty);
        quote!(#pname: #ty)
    });
    let wrt: Vec<String> = tape
        .params
        .iter()
        .filter(|p| p.differentiable())
        .map(|p| format!("`{}`", p.name))
        .collect();
    let doc = format!(
        "The value of [`{name}`] and its gradient with respect to {}, by reverse-mode \
         differentiation generated at compile time ({} nodes on the static tape).\n\n\
         # Errors\n\n\
         A [`TapeError`](::tape::TapeError) naming the node, the op and the shapes when a \
         kernel rejects its operands: incompatible shapes, an axis out of range, `ln` of a \
         non-positive value.",
        if wrt.is_empty() {
            "no parameter".to_string()
        } else {
            wrt.join(", ")
        },
        tape.nodes.len(),
    );
    let doc = format!("{doc}\n\n{}", forward::tape_table(tape));
    let forward = tape
        .nodes
        .iter()
        .map(|node| forward::emit_forward(tape, node.id));
    let reverse = emit_reverse(tape);
    let out = idents::value(tape.output);
    let reached = tape.reached();
    let fields = tape.params.iter().filter(|p| p.differentiable()).map(|p| {
        let like = value_ref(tape, p.node);
        let slot = if reached[p.node.0] {
            let g = idents::grad(p.node);
            quote!(#g)
        } else {
            quote!(::core::option::Option::None)
        };
        let pname = &p.name;
        quote!(#pname: #rt::grad_or_zeros(#slot, #like))
    });
    quote! {
        #[doc = #doc]
        #[allow(dead_code, unused_variables, unused_mut, clippy::all)]
        #vis fn #grad_fn #generics (#(#params),*) -> ::core::result::Result<#strukt, #rt::TapeError>
        #where_clause
        {
            #(#forward)*
            #reverse
            ::core::result::Result::Ok(#strukt { value: #out, #(#fields,)* })
        }
    }
}

/// The seed, the slots, and one VJP block per reached op in reverse id order.
fn emit_reverse(tape: &Tape) -> TokenStream {
    let rt = runtime();
    let reached = tape.reached();
    if !reached[tape.output.0] {
        return TokenStream::new();
    }
    let elem = syn::Ident::new(tape.elem.name(), Span::call_site());
    let seed_slot = idents::grad(tape.output);
    let seed =
        quote!(let mut #seed_slot = ::core::option::Option::Some(#rt::ops::arith::one::<#elem>()););
    let slots = tape
        .nodes
        .iter()
        .rev()
        .filter(|n| reached[n.id.0] && n.id != tape.output)
        .map(|n| {
            let g = idents::grad(n.id);
            quote!(let mut #g = ::core::option::Option::None;)
        });
    let blocks = tape
        .nodes
        .iter()
        .rev()
        .filter(|n| reached[n.id.0])
        .filter_map(|n| emit_vjp(tape, n.id, &reached));
    quote! {
        #seed
        #(#slots)*
        #(#blocks)*
    }
}

/// `if let Some(g) = __tape_gK { op_vjp(g, operands…, &__tape_vK, configs…, accs…)?; }`
fn emit_vjp(tape: &Tape, id: NodeId, reached: &[bool]) -> Option<TokenStream> {
    let rt = runtime();
    let node = tape.node(id);
    let NodeKind::Op { op, args, configs } = &node.kind else {
        return None;
    };
    let g = idents::grad(id);
    let ct = idents::cotangent();
    let v = idents::value(id);
    let vjp = syn::Ident::new(&format!("{}_vjp", op.name), Span::call_site());
    let family = syn::Ident::new(op.family, Span::call_site());
    let operands = args.iter().map(|a| value_ref(tape, *a));
    let config_ids = (0..configs.len()).map(|i| idents::config(id, i));
    // An operand used twice (`x * x`) cannot lend its slot twice at once: later uses get a
    // temporary slot, merged after the call.
    let index = id.0;
    let node_name = name_literal(tape, id);
    let mut accs = Vec::new();
    let mut temps = Vec::new();
    for (position, a) in args.iter().enumerate() {
        if !reached[a.0] {
            accs.push(quote!(#rt::Acc::skip()));
        } else if args[..position].contains(a) {
            let d = idents::duplicate(position);
            let slot = idents::grad(*a);
            accs.push(quote!(#rt::Acc::to(&mut #d)));
            temps.push((
                quote!(let mut #d = ::core::option::Option::None;),
                quote! {
                    if let ::core::option::Option::Some(#d) = #d {
                        #rt::at(#rt::Acc::to(&mut #slot).put(#d), #index, #node_name)?;
                    }
                },
            ));
        } else {
            let slot = idents::grad(*a);
            accs.push(quote!(#rt::Acc::to(&mut #slot)));
        }
    }
    let (temp_decls, temp_merges): (Vec<_>, Vec<_>) = temps.into_iter().unzip();
    let call = quote_spanned! {node.span=>
        #rt::ops::#family::#vjp(#ct, #(#operands,)* &#v, #(#config_ids,)* #(#accs),*)
    };
    Some(quote! {
        if let ::core::option::Option::Some(#ct) = #g {
            #(#temp_decls)*
            #rt::at(#call, #index, #node_name)?;
            #(#temp_merges)*
        }
    })
}
