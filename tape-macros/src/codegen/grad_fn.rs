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
//!     let __tape_scope = keep::Scope::enter();             // the first kernel error's slot
//!     let __tape_v0 = w;                                   // forward: one `let` per node
//!     let __tape_v1 = x;
//!     let __tape_v2 = keep(ops::linalg::dot(__tape_v1, __tape_v0), 2, "z");
//!     let __tape_v3 = keep(ops::reduce::sum(&__tape_v2), 3, "");
//!     /* reverse sweep seeded with 1: see `reverse` */
//!     if let Some(e) = keep::take() { return Err(e); }
//!     Ok(LossGrad { value: __tape_v3, w: grad_or_zeros(__tape_g0, __tape_v0) })
//! }
//! ```
//!
//! A function returning `(loss, aux…)` gets `FGrad::aux`. A function returning an array gets
//! a `_grad` that fails to compile where it is called, saying why.

use super::blocks::{self, Unit};
use super::forward::{Purpose, emit_forward, tape_table};
use super::reuse;
use super::reverse;
use super::{cse, eager, fuse, indexed, schedule};
use super::{
    enter_scope, idents, items, return_kept, runtime, runtime_path, use_runtime, value_ref,
    verbatim,
};
use crate::ir::{Elem, NodeKind, ParamKind, Tape};
use proc_macro2::TokenStream;
use quote::quote;

/// `struct FGrad` and `fn f_grad`, or the stub `f_grad` of a function with an array output.
pub fn emit(tape: &Tape) -> TokenStream {
    if !tape.scalar_output {
        return emit_stub(tape);
    }
    let strukt = emit_struct(tape);
    let func = emit_fn(tape);
    quote!(#strukt #func)
}

/// The struct's generic parameters: the float type of a generic function.
pub fn struct_generics(tape: &Tape) -> (TokenStream, TokenStream) {
    match &tape.elem {
        Elem::Generic(f) => (quote!(<#f: ::tape::Float>), quote!(<#f>)),
        _ => (TokenStream::new(), TokenStream::new()),
    }
}

fn emit_struct(tape: &Tape) -> TokenStream {
    let (vis, name) = (&tape.vis, &tape.name);
    let elem = tape.elem.tokens();
    let (decl, _) = struct_generics(tape);
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
    let aux = tape.aux.as_ref().map(|aux| {
        let ty = &aux.ty;
        quote! {
            /// The auxiliary outputs: everything the function returns after the value.
            pub aux: #ty,
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, PartialEq)]
        #[allow(dead_code)]
        #vis struct #strukt #decl {
            #[doc = #value_doc]
            pub value: #elem,
            #aux
            #(#fields)*
        }
    }
}

fn emit_fn(tape: &Tape) -> TokenStream {
    let (vis, name) = (&tape.vis, &tape.name);
    let (generics, where_clause) = (&tape.generics, &tape.generics.where_clause);
    let (rt, use_runtime) = (runtime_path(), use_runtime());
    let strukt = idents::grad_struct(name);
    let (_, use_generics) = struct_generics(tape);
    let grad_fn = idents::grad_fn(name);
    let params = super::params(tape);
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
         non-positive value.\n\n{}",
        if wrt.is_empty() {
            "no parameter".to_string()
        } else {
            wrt.join(", ")
        },
        tape.nodes.len(),
        tape_table(tape),
    );
    let ret = quote!(::core::result::Result<#strukt #use_generics, #rt::TapeError>);
    let merged = cse::merge(tape);
    let (fused, groups) = fuse::plan(&merged);
    let fixed_reads = !indexed::indexed(&fused, &fused.reached(), true)
        .fixed
        .is_empty();
    let body = if groups.is_empty() && !fixed_reads {
        emit_body(&merged, &[], &TokenStream::new())
    } else {
        // Where a group cannot run fused (its inputs broadcast, or one is strided), or a
        // vector read at known indices is not a contiguous vector that long, the whole
        // gradient is computed op by op instead, by this copy of the plain body.
        let unfused = syn::Ident::new("__tape_unfused", proc_macro2::Span::mixed_site());
        let plain =
            if tape.aux.is_none() && tape.params.iter().all(|p| p.kind != ParamKind::ArrayOwned) {
                emit_body_by_vjp(tape)
            } else {
                emit_body(tape, &[], &TokenStream::new())
            };
        let args = tape.params.iter().map(|p| idents::value(p.node));
        let fallback = blocks::fallback();
        let fused_body = emit_body(&fused, &groups, &quote!(#fallback!(#(#args),*)));
        // The fallback is a macro so that a block of a long body (a closure) can define its
        // own: there it leaves the block with nothing, and the function returns this.
        let leave = blocks::fallback_rules(quote!(return #unfused($($arg),*)));
        quote! {
            #[allow(unused_variables, unused_mut, unused_parens, clippy::all)]
            fn #unfused #generics (#(#params),*) -> #ret #where_clause {
                #plain
            }
            #leave
            #fused_body
        }
    };
    quote! {
        #[doc = #doc]
        #[allow(dead_code, unused_variables, unused_mut, unused_parens, clippy::all)]
        #vis fn #grad_fn #generics (#(#params),*) -> #ret
        #where_clause
        {
            #use_runtime
            #body
        }
    }
}

/// `f_grad`'s body by way of `f_vjp`, which computes op by op: the fallback of a function with
/// fused groups, without a second copy of the whole tape for rustc to check.
fn emit_body_by_vjp(tape: &Tape) -> TokenStream {
    let rt = runtime();
    let strukt = idents::grad_struct(&tape.name);
    let vjp_fn = idents::vjp_fn(&tape.name);
    let elem = tape.elem.tokens();
    let names: Vec<_> = tape.params.iter().map(|p| &p.name).collect();
    let (value, pullback) = (
        syn::Ident::new("__tape_value", proc_macro2::Span::mixed_site()),
        syn::Ident::new("__tape_pullback", proc_macro2::Span::mixed_site()),
    );
    let slots: Vec<_> = tape.params.iter().map(|p| idents::grad(p.node)).collect();
    let decls = tape.params.iter().zip(&slots).map(|(p, g)| {
        let owned = &p.owned_ty;
        quote!(let mut #g: ::core::option::Option<#owned> = ::core::option::Option::None;)
    });
    let accs = tape.params.iter().zip(&slots).map(|(p, g)| {
        if p.differentiable() {
            quote!(#rt::acc_to(&mut #g))
        } else {
            quote!(#rt::acc_skip())
        }
    });
    let fields = tape
        .params
        .iter()
        .zip(&slots)
        .filter(|(p, _)| p.differentiable())
        .map(|(p, g)| {
            let pname = &p.name;
            let like = if p.kind == ParamKind::ArrayRef {
                quote!(#pname)
            } else {
                quote!(&#pname)
            };
            quote!(#pname: #rt::grad_or_zeros(#g, #like))
        });
    quote! {
        let (#value, #pullback) = #vjp_fn(#(#names),*)?;
        #(#decls)*
        #pullback(#rt::ops::arith::one::<#elem>(), #(#accs),*)?;
        ::core::result::Result::Ok(#strukt { value: #value, #(#fields,)* })
    }
}

/// The statements of `f_grad`'s body: the forward pass, the reverse sweep and the result.
/// With fused `groups`, a group that cannot run fused evaluates `unfused`, which returns the
/// gradient computed op by op.
fn emit_body(tape: &Tape, groups: &[fuse::Group], unfused: &TokenStream) -> TokenStream {
    let rt = runtime();
    let strukt = idents::grad_struct(&tape.name);
    let items = items(tape);
    let plan = reuse::plan(tape, groups);
    let chains = schedule::chains(tape);
    let mut sunk = vec![false; tape.nodes.len()];
    for link in chains.values().flatten() {
        sunk[link.0] = true;
    }
    let reached = tape.reached();
    // Reads at known indices need the op-by-op fallback for a vector too short for them.
    let indexed = indexed::indexed(tape, &reached, !unfused.is_empty());
    let one = |node: &crate::ir::Node| match node.group {
        Some(g) if groups[g].last() == node.id => {
            fuse::emit_forward(tape, &groups[g], unfused, plan.groups.get(&g).copied())
        }
        Some(_) => TokenStream::new(),
        None => match (
            plan.forward.get(&node.id),
            indexed.fixed_read(tape, node.id),
        ) {
            (Some(&k), _) => reuse::emit_forward(tape, node.id, k),
            (None, Some((a, k))) => indexed::emit_fixed_read(tape, node.id, a, k),
            (None, None) => emit_forward(tape, node.id, Purpose::Grad),
        },
    };
    // The forward `let`s in order, running sums sunk to where they end.
    let order: Vec<crate::ir::NodeId> = tape
        .nodes
        .iter()
        .filter(|node| !sunk[node.id.0])
        .flat_map(|node| {
            let links = chains.get(&node.id).into_iter().flatten().copied();
            links.chain(std::iter::once(node.id))
        })
        .collect();
    let eager = eager::plan(tape, &order, groups, &indexed);
    let elem = tape.elem.tokens();
    let seed = quote!(#rt::ops::arith::one::<#elem>());
    let eager_block = |id: crate::ir::NodeId| {
        reverse::emit_block(tape, id, &reached, false, &indexed).unwrap_or_default()
    };
    let early_slots = tape
        .nodes
        .iter()
        .map(|n| n.id)
        .filter(|id| eager.declares_slot(*id));
    let early_slots = early_slots.map(|id| {
        let g = idents::grad(id);
        let init = if id == tape.output {
            quote!(::core::option::Option::Some(#seed))
        } else {
            quote!(::core::option::Option::None)
        };
        quote!(let mut #g: ::core::option::Option<#elem> = #init;)
    });
    let early_slots: Vec<TokenStream> = early_slots.collect();
    let early = eager.before.iter().map(|id| Unit::Free(eager_block(*id)));
    let last_param = tape.params.iter().map(|p| p.node).max();
    let forward = order.iter().flat_map(|id| {
        let this = one(tape.node(*id));
        // The fixed-size views, once every parameter is bound (their fallback passes them all).
        let views = (Some(*id) == last_param).then(|| {
            let views = indexed.fixed.iter();
            let views = views.map(|&(a, n)| indexed::fixed_view(tape, a, n, unfused));
            quote!(#(#views)*)
        });
        let buffer = eager
            .declares_buffer(*id)
            .then(|| indexed::declare_index_total(tape, *id, &indexed));
        let blocks = eager.after[id.0].iter().map(|b| eager_block(*b));
        let rest = quote!(#views #buffer #(#blocks)*);
        // Parameters are bound in the function itself: the fallback passes them all.
        if matches!(tape.node(*id).kind, NodeKind::Param(_)) {
            vec![Unit::Fixed(this), Unit::Free(rest)]
        } else {
            vec![Unit::Free(quote!(#this #rest))]
        }
    });
    let reverse =
        reverse::reverse_units(tape, seed.clone(), false, groups, &plan, &eager, &indexed);
    let out = idents::value(tape.output);
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
    let (aux_bind, aux_field) = match &tape.aux {
        Some(aux) => {
            let a = idents::aux();
            let code = verbatim(tape, &aux.code);
            (quote!(let #a = #code;), quote!(aux: #a,))
        }
        None => (TokenStream::new(), TokenStream::new()),
    };
    let failed = enter_scope();
    let units = std::iter::once(Unit::Fixed(quote!(#failed #(#early_slots)*)))
        .chain(early)
        .chain(forward)
        .chain(std::iter::once(Unit::Free(aux_bind)))
        .chain(reverse)
        .collect();
    let failed = return_kept();
    let tail = quote! {
        #failed
        ::core::result::Result::Ok(#strukt { value: #out, #aux_field #(#fields,)* })
    };
    let body = blocks::split(units, tail, Some(unfused).filter(|u| !u.is_empty()));
    let strip_loop = (!groups.is_empty()).then(|| fuse::strip_loop_rules(false));
    quote!(#items #strip_loop #body)
}

/// `f_grad` for a function that returns an array: it type-checks only where its return type
/// is a float, so calling it is a compile error at the call, with `ScalarOutput`'s message.
fn emit_stub(tape: &Tape) -> TokenStream {
    let (vis, name, ret) = (&tape.vis, &tape.name, &tape.ret);
    let generics = &tape.generics;
    let rt = runtime_path();
    let grad_fn = idents::grad_fn(name);
    let tape_struct = idents::tape_struct(name);
    let params = super::params(tape);
    let predicates = generics.where_clause.as_ref().map(|w| {
        let p = &w.predicates;
        quote!(#p,)
    });
    let doc = format!(
        "Not available: `{name}` returns `{}`, not a float, so it has no gradient to return. \
         Call `{name}` from a differentiable function that reduces its value to a scalar, or seed \
         its tape: [`{tape_struct}::record`] then \
         `backward_dense({tape_struct}::OUTPUT, seed)`.",
        crate::check::pretty(ret)
    );
    quote! {
        #[doc = #doc]
        #[allow(dead_code, unused_variables)]
        #vis fn #grad_fn #generics (#(#params),*) -> ::core::result::Result<#rt::NotScalar, #rt::TapeError>
        where
            for<'__tape_any> #ret: #rt::ScalarOutput,
            #predicates
        {
            <#ret as #rt::ScalarOutput>::not_scalar()
        }
    }
}
