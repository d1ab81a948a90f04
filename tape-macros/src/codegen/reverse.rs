//! The reverse sweep of the fast path, shared by `f_grad` and `f_vjp`: the seed, one gradient
//! slot per reached node, and one block per reached node in reverse id order.
//!
//! Input: the tape of `let z = x.dot(w); z.sum()` (nodes w = 0, x = 1, z = 2, sum = 3).
//!
//! Output:
//!
//! ```text
//! let mut __tape_g3 = Some(<seed>);
//! let mut __tape_g2 = None;
//! let mut __tape_g0 = None;
//! if let Some(__tape_g) = __tape_g3 {
//!     keep(ops::reduce::sum_vjp(__tape_g, &__tape_v2, &__tape_v3, acc_to(&mut __tape_g2)), 3, "");
//! }
//! if let Some(__tape_g) = __tape_g2 {
//!     keep(ops::linalg::dot_vjp(__tape_g, __tape_v1, __tape_v0, &__tape_v2,
//!                               acc_skip(), acc_to(&mut __tape_g0)), 2, "z");
//! }
//! ```
//!
//! Nodes that cannot reach the output get no slot and no block. An operand used twice by one
//! node (`x * x`) lends a temporary slot for its second use, merged after the call.

use super::blocks::Unit;
use super::eager::Eager;
use super::forward::config_value;
use super::fuse::{self, Group};
use super::indexed::{Indexed, declare_index_total, emit_add, emit_join, indexed};
use super::reuse::{self, Plan};
use super::{
    idents, is_optional, kept, name_literal, return_kept, runtime, scalar_path, scalar_value,
    value_ref,
};
use crate::ir::{NodeId, NodeKind, Tape};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// The seed, the slots and the blocks. Afterwards `__tape_g{p}` holds each reached
/// parameter's gradient (`None` if nothing reached it).
///
/// With `recompute_calls`, a call's block calls the callee's `_vjp` again for its pullback
/// (for `f_vjp`, whose forward pass cannot keep pullbacks that borrow its locals).
///
/// `groups` are the fused groups of [`fuse::plan`] (none outside `_grad`): each gets one block,
/// at its last node. `plan` says where `_grad` moves arrays into VJPs ([`reuse`]; empty
/// elsewhere). The blocks, slots and buffers of `eager` ([`super::eager`]) are emitted with the
/// forward pass instead.
pub fn emit_reverse(
    tape: &Tape,
    seed: TokenStream,
    recompute_calls: bool,
    groups: &[Group],
    plan: &Plan,
    eager: &Eager,
) -> TokenStream {
    let indexed = indexed(tape, &tape.reached(), false);
    let units = reverse_units(tape, seed, recompute_calls, groups, plan, eager, &indexed);
    let tokens = units.into_iter().map(|unit| match unit {
        Unit::Fixed(tokens) | Unit::Free(tokens) => tokens,
    });
    quote!(#(#tokens)*)
}

/// [`emit_reverse`] as units for [`super::blocks::split`]: the declarations of the seed, the
/// slots and the index buffers stay in the function, each node's block may move.
pub fn reverse_units(
    tape: &Tape,
    seed: TokenStream,
    recompute_calls: bool,
    groups: &[Group],
    plan: &Plan,
    eager: &Eager,
    indexed: &Indexed,
) -> Vec<Unit> {
    let reached = tape.reached();
    if !reached[tape.output.0] {
        return Vec::new();
    }
    let seed_slot = idents::grad(tape.output);
    let seed_decl = (!eager.declares_slot(tape.output))
        .then(|| quote!(let mut #seed_slot = ::core::option::Option::Some(#seed);));
    let rt = runtime();
    let slots = tape
        .nodes
        .iter()
        .rev()
        .filter(|n| reached[n.id.0] && n.id != tape.output && !eager.declares_slot(n.id))
        // A fused group's inner nodes have no value and no slot: their cotangents live in the
        // group's loop.
        .filter(|n| n.group.is_none_or(|g| groups[g].outputs.contains(&n.id)))
        // A value only summed takes its cotangent as the sum's scalar (`reuse`): no slot.
        .filter(|n| !plan.splat.contains_key(&n.id))
        .map(|n| {
            let g = idents::grad(n.id);
            if is_optional(tape, n.id) {
                // The value exists only where its arm ran; its type is still known.
                let v = idents::value(n.id);
                quote!(let mut #g = #rt::slot_opt(&#v);)
            } else {
                let v = value_ref(tape, n.id);
                quote!(let mut #g = #rt::slot(#v);)
            }
        });
    let totals = indexed
        .arrays
        .iter()
        .filter(|a| !eager.declares_buffer(**a))
        .map(|a| declare_index_total(tape, *a, indexed));
    let blocks = tape.nodes.iter().rev().map(|n| {
        let block = match n.group {
            Some(g) if groups[g].last() == n.id => {
                let group = &groups[g];
                if group.members.iter().any(|m| reached[m.0]) {
                    Some(fuse::emit_backward(tape, group, &reached))
                } else {
                    None
                }
            }
            Some(_) => None,
            None if eager.moved(n.id) => None,
            None if reached[n.id.0] => reuse::emit_block(tape, plan, n.id, &reached)
                .or_else(|| emit_block(tape, n.id, &reached, recompute_calls, indexed)),
            None => None,
        };
        // The `x[i]` contributions join `x`'s gradient before `x`'s own block reads it.
        let total = indexed
            .contains(&n.id)
            .then(|| emit_join(tape, n.id, indexed));
        Unit::Free(quote!(#total #block))
    });
    let splats = reuse::emit_splat_slots(tape, plan);
    let declarations = quote! {
        #seed_decl
        #(#slots)*
        #splats
        #(#totals)*
    };
    std::iter::once(Unit::Fixed(declarations))
        .chain(blocks)
        .collect()
}

/// The accumulators for a node's operands, with temporary slots for repeated operands.
struct Accs {
    accs: Vec<TokenStream>,
    decls: Vec<TokenStream>,
    merges: Vec<TokenStream>,
}

fn accs(tape: &Tape, id: NodeId, operands: &[NodeId], reached: &[bool]) -> Accs {
    let rt = runtime();
    let mut out = Accs {
        accs: Vec::new(),
        decls: Vec::new(),
        merges: Vec::new(),
    };
    for (position, a) in operands.iter().enumerate() {
        if !reached[a.0] {
            out.accs.push(quote!(#rt::acc_skip()));
        } else if operands[..position].contains(a) {
            let d = idents::duplicate(position);
            let slot = idents::grad(*a);
            out.accs.push(quote!(#rt::acc_to(&mut #d)));
            out.decls
                .push(quote!(let mut #d = ::core::option::Option::None;));
            let put = kept(tape, id, quote!(#rt::acc_to(&mut #slot).put(#d)));
            out.merges.push(quote! {
                if let ::core::option::Option::Some(#d) = #d {
                    #put;
                }
            });
        } else {
            let slot = idents::grad(*a);
            out.accs.push(quote!(#rt::acc_to(&mut #slot)));
        }
    }
    out
}

/// `if let Some(g) = __tape_gK { <the node's VJP> }`.
pub fn emit_block(
    tape: &Tape,
    id: NodeId,
    reached: &[bool],
    recompute_calls: bool,
    indexed: &Indexed,
) -> Option<TokenStream> {
    let rt = runtime();
    let node = tape.node(id);
    let g = idents::grad(id);
    let ct = idents::cotangent();
    let index = id.0;
    let node_name = name_literal(tape, id);
    if let Some(call) = emit_scalar_pass(tape, id, reached) {
        return Some(call);
    }
    let body = match &node.kind {
        NodeKind::Param(_) | NodeKind::Const(_) | NodeKind::Cond(_) => return None,
        NodeKind::Op { op, args, .. } if op.name == "index" && indexed.contains(&args[0]) => {
            emit_add(tape, id, indexed, &ct)
        }
        NodeKind::Op { op, args, configs } if scalar_path(tape, id) => {
            let vjp = op.vjp_ident();
            // A value the VJP does not read (the op table's `reads`) is passed as the
            // cotangent, a stand-in of its type: the block may run before the value exists
            // (`eager`).
            let read = |a: NodeId, reads: bool| {
                if reads {
                    scalar_value(tape, a)
                } else {
                    quote!(#ct)
                }
            };
            let operands = args.iter().map(|a| read(*a, op.reads.operands()));
            let configs = (0..configs.len()).map(|i| config_value(tape, id, i));
            let d = syn::Ident::new("__tape_d", Span::mixed_site());
            // Unary partials read the output; binary ones return a pair.
            let (y, parts): (Option<TokenStream>, Vec<TokenStream>) = if args.len() == 1 {
                (Some(read(id, op.reads.output())), vec![quote!(#d)])
            } else {
                (None, vec![quote!(#d.0), quote!(#d.1)])
            };
            let adds = args
                .iter()
                .zip(parts)
                .filter(|(a, _)| reached[a.0])
                .map(|(a, part)| {
                    let slot = idents::grad(*a);
                    quote!(#rt::ops::elem::accumulate(&mut #slot, #part);)
                });
            let call = quote_spanned! {node.span=>
                #rt::ops::elem::#vjp(#ct, #(#operands,)* #y #(, #configs)*)
            };
            quote! {
                let #d = #call;
                #(#adds)*
            }
        }
        NodeKind::Op { op, args, configs } => {
            let vjp = op.vjp_ident();
            let family = syn::Ident::new(op.family, Span::call_site());
            let operands = args.iter().map(|a| value_ref(tape, *a));
            let y = value_ref(tape, id);
            let configs = (0..configs.len()).map(|i| config_value(tape, id, i));
            let Accs {
                accs,
                decls,
                merges,
            } = accs(tape, id, args, reached);
            let call = quote_spanned! {node.span=>
                #rt::ops::#family::#vjp(#ct, #(#operands,)* #y, #(#configs,)* #(#accs),*)
            };
            let call = kept(tape, id, call);
            quote! {
                #(#decls)*
                #call;
                #(#merges)*
            }
        }
        NodeKind::Select { cond, then, other } => {
            let c = idents::value(*cond);
            let Accs { accs, .. } = accs(tape, id, &[*then, *other], reached);
            let (a_then, a_other) = (&accs[0], &accs[1]);
            let call = kept(
                tape,
                id,
                quote!(#rt::select_vjp(#ct, #c, #a_then, #a_other)),
            );
            quote!(#call;)
        }
        NodeKind::Call { path, args } => {
            let p = idents::pullback(id);
            let operands: Vec<NodeId> = args.iter().map(|a| a.node).collect();
            let Accs {
                accs,
                decls,
                merges,
            } = accs(tape, id, &operands, reached);
            let pullback = if recompute_calls {
                let vjp = idents::callee_vjp_path(path);
                let arg_values = super::forward::call_args(tape, args);
                let call = quote_spanned!(node.span=> #vjp(#(#arg_values),*));
                quote!(#rt::at!(#call, #index, #node_name).1)
            } else if super::is_optional(tape, id) {
                quote!(#rt::at!(#rt::present(#p), #index, #node_name))
            } else {
                quote!(#p)
            };
            let local = syn::Ident::new("__tape_pullback", Span::mixed_site());
            // The callee's pullback returns its own errors: after an earlier one here.
            let failed = return_kept();
            quote! {
                #failed
                #(#decls)*
                let #local = #pullback;
                #rt::at!(#local(#ct, #(#accs),*), #index, #node_name);
                #(#merges)*
            }
        }
    };
    Some(quote! {
        if let ::core::option::Option::Some(#ct) = #g {
            #body
        }
    })
}

/// A scalar `a + b` or `a − b` of two different operands (an op that
/// [`passes`](crate::ops::OpSpec::passes) its cotangent on):
/// `ops::elem::add_back(__tape_gK, &mut __tape_gA, &mut __tape_gB)`, one call without an
/// `if let` (a running sum of a thousand terms is a thousand of them). An operand that needs
/// no gradient gets a slot of its own that nothing reads.
fn emit_scalar_pass(tape: &Tape, id: NodeId, reached: &[bool]) -> Option<TokenStream> {
    let node = tape.node(id);
    let NodeKind::Op { op, args, .. } = &node.kind else {
        return None;
    };
    let back = op.back_ident()?;
    if !scalar_path(tape, id) || args.len() != 2 || args[0] == args[1] {
        return None;
    }
    let rt = runtime();
    let g = idents::grad(id);
    let slots = args.iter().map(|a| {
        if reached[a.0] {
            let slot = idents::grad(*a);
            quote!(&mut #slot)
        } else {
            quote!(&mut ::core::option::Option::None)
        }
    });
    Some(quote_spanned!(node.span=> #rt::ops::elem::#back(#g, #(#slots),*);))
}
