//! Buffer reuse in `_grad`: each intermediate array's last read, and the kernels there that
//! take the array by value and write their result into its buffer (`tape_runtime::reuse`).
//!
//! Input: the tape of `tanh(&x.dot(w)).sum()` (nodes w = 0, x = 1, dot = 2, tanh = 3,
//! sum = 4).
//!
//! The product (2) is read by `tanh`'s forward and by no VJP (`tanh`'s reads its output,
//! `dot`'s its operands), so `tanh` runs in its buffer, and the kernel hands back the
//! product's ghost under its name:
//!
//! ```text
//! let (__tape_v3, __tape_v2) = reuse::unary_strips(__tape_v2, fuse::tanh_shared, elem::tanh);
//! ```
//!
//! `tanh`'s output (3) is only summed: its cotangent is the sum's on every element, so the
//! sum's block passes the scalar on and `tanh`'s block computes `x̄` in its output's buffer
//! and adds it to the product's slot:
//!
//! ```text
//! if let Some(__tape_g) = __tape_g4 { __tape_sp3 = Some(reuse::sum_splat(__tape_g, &__tape_v3)); }
//! let __tape_v3 = keep(reuse::splat_vjp_output(__tape_sp3, __tape_v3, elem::tanh_vjp, acc_to(&mut __tape_g2)), 3, "");
//! ```
//!
//! Later code that names a moved array reads only its shape and type (a VJP's operand it does
//! not read, a gradient slot): the ghost, a view of one zero broadcast to that shape. What each
//! VJP reads is the op table's `reads`.

use super::fuse::{Group, uses};
use super::{idents, kept, runtime, scalar_path, value_ref};
use crate::ir::{NodeId, NodeKind, Tape};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use std::collections::HashMap;

/// Where `_grad` moves arrays into kernels.
#[derive(Debug, Default)]
pub struct Plan {
    /// Forward: a node whose kernel takes its operand at this position by value.
    pub forward: HashMap<NodeId, usize>,
    /// Backward: nodes whose VJP takes their first operand by value (`<vjp>_owned`).
    pub owned_vjp: Vec<NodeId>,
    /// Backward: a unary elementwise node whose value is only summed (or averaged), with that
    /// reduction: its VJP runs on the reduction's scalar cotangent, in its own buffer.
    pub splat: HashMap<NodeId, NodeId>,
    /// Fused groups (by index) whose first output is written into the buffer of their input
    /// at this position (where that input covers the group; checked at run time).
    pub groups: HashMap<usize, usize>,
}

impl Plan {
    /// The reduction whose scalar cotangent node `id` takes, if it is one of the splat pairs.
    fn splat_source(&self, reduction: NodeId) -> Option<NodeId> {
        self.splat
            .iter()
            .find(|(_, s)| **s == reduction)
            .map(|(u, _)| *u)
    }
}

/// Where in `_grad` a value is read: forward positions are node ids, then the auxiliary
/// outputs, then the reverse sweep's blocks in reverse id order.
fn forward_at(id: NodeId) -> usize {
    id.0
}

fn aux_at(tape: &Tape) -> usize {
    tape.nodes.len()
}

fn backward_at(tape: &Tape, id: NodeId) -> usize {
    2 * tape.nodes.len() - id.0
}

/// The plan for `_grad`'s body over `tape` with fused `groups`.
pub fn plan(tape: &Tape, groups: &[Group]) -> Plan {
    let reached = tape.reached();
    let n = tape.nodes.len();
    // The last position that reads each node's value (not just its shape), and whether the
    // value may be moved at all.
    let mut last = vec![0usize; n];
    let mut movable: Vec<bool> = tape
        .nodes
        .iter()
        .map(|node| candidate(tape, node.id))
        .collect();
    let read = |last: &mut Vec<usize>, v: NodeId, at: usize| {
        last[v.0] = last[v.0].max(at);
    };
    for node in &tape.nodes {
        let id = node.id;
        let group = node.group.map(|g| &groups[g]);
        let here = group.map_or(forward_at(id), |g| forward_at(g.last()));
        for v in uses(tape, id) {
            read(&mut last, v, here);
        }
        match &node.kind {
            NodeKind::Op { op, args, .. } => {
                if op.reads.operands() && reached[id.0] {
                    let block = group.map_or(id, Group::last);
                    for a in args {
                        read(&mut last, *a, backward_at(tape, block));
                    }
                }
                if op.reads.output() && reached[id.0] {
                    let block = group.map_or(id, Group::last);
                    read(&mut last, id, backward_at(tape, block));
                }
            }
            NodeKind::Call { args, .. } => {
                // A pullback may borrow its arguments: never moved.
                for a in args {
                    movable[a.node.0] = false;
                }
            }
            _ => {}
        }
        if let NodeKind::Const(code) | NodeKind::Cond(code) = &node.kind {
            for c in &code.captures {
                movable[c.node.0] = false;
            }
        }
        if let NodeKind::Op { configs, .. } = &node.kind {
            for c in configs.iter().flat_map(|c| &c.captures) {
                movable[c.node.0] = false;
            }
        }
    }
    if let Some(aux) = &tape.aux {
        for c in &aux.code.captures {
            read(&mut last, c.node, aux_at(tape));
            movable[c.node.0] = false;
        }
    }
    let mut plan = Plan::default();
    // A group's first output in the buffer of an input read last by the group's loop.
    for (index, g) in groups.iter().enumerate() {
        if g.outputs.is_empty() {
            continue;
        }
        if let Some(k) = g
            .inputs
            .iter()
            .position(|x| movable[x.0] && last[x.0] == forward_at(g.last()))
        {
            plan.groups.insert(index, k);
        }
    }
    // Other group inputs and outputs keep their buffers (the fused loops hold slices of them).
    for g in groups {
        for x in g.inputs.iter().chain(&g.outputs) {
            movable[x.0] = false;
        }
    }

    // How many nodes read each value.
    let mut readers = vec![0usize; n];
    for node in &tape.nodes {
        let mut read = uses(tape, node.id);
        read.sort_unstable();
        read.dedup();
        for v in read {
            readers[v.0] += 1;
        }
    }
    for node in &tape.nodes {
        let id = node.id;
        let NodeKind::Op { op, args, configs } = &node.kind else {
            continue;
        };
        if !node.guard.is_empty() || node.group.is_some() {
            continue;
        }
        let once = |v: NodeId| args.iter().filter(|a| **a == v).count() == 1;
        // Forward: an elementwise op on an array read nowhere after it.
        if op.elementwise
            && !op.checked
            && !node.scalar
            && !scalar_path(tape, id)
            && configs.len() <= 1
            && args.len() <= 2
        {
            if let Some(k) = args
                .iter()
                .position(|a| movable[a.0] && once(*a) && last[a.0] == forward_at(id))
            {
                plan.forward.insert(id, k);
                movable[args[k].0] = false;
            }
        }
        // Backward: a VJP that writes into its first operand, read last there.
        if op.owned_vjp && reached[id.0] {
            let v = args[0];
            if movable[v.0] && once(v) && last[v.0] == backward_at(tape, id) {
                plan.owned_vjp.push(id);
                movable[v.0] = false;
            }
        }
        // A unary elementwise node whose value only this reduction reads.
        if op.splat && reached[id.0] {
            let u = args[0];
            if movable[u.0] && readers[u.0] == 1 && reached[u.0] && splattable(tape, u) {
                plan.splat.insert(u, id);
                movable[u.0] = false;
            }
        }
    }
    plan
}

/// Whether node `id`'s value is an array `_grad` owns outright: an op's result, outside any
/// branch and any fused group, and not the function's value.
fn candidate(tape: &Tape, id: NodeId) -> bool {
    let node = tape.node(id);
    matches!(node.kind, NodeKind::Op { .. })
        && !node.scalar
        && node.guard.is_empty()
        && node.group.is_none()
        && id != tape.output
}

/// Whether node `id` is a unary elementwise op whose VJP `reuse::splat_vjp` can run.
fn splattable(tape: &Tape, id: NodeId) -> bool {
    let node = tape.node(id);
    match &node.kind {
        NodeKind::Op { op, args, configs } => {
            op.elementwise && !op.checked && args.len() == 1 && configs.len() <= 1
        }
        _ => false,
    }
}

fn local(prefix: &str, id: NodeId) -> Ident {
    Ident::new(&format!("__tape_{prefix}{}", id.0), Span::mixed_site())
}

/// Moving `v` into `moved`: the ghost made first, the move, and the ghost taking `v`'s name
/// for the code after.
pub fn move_out(v: NodeId, moved: &Ident) -> (TokenStream, TokenStream, TokenStream) {
    let rt = runtime();
    let (value, w) = (idents::value(v), local("w", v));
    let ghost = quote!(let #w = #rt::reuse::ghost(&#value););
    let take = quote!(let #moved = #value;);
    let after = quote!(let #value = #w;);
    (ghost, take, after)
}

/// Node `id`'s forward, its operand at position `k` moved into the kernel, which returns the
/// result and the operand's ghost in one statement (a statement per move, ghost and
/// rebinding made long functions markedly slower to check).
pub fn emit_forward(tape: &Tape, id: NodeId, k: usize) -> TokenStream {
    let rt = runtime();
    let node = tape.node(id);
    let NodeKind::Op { op, args, configs } = &node.kind else {
        return TokenStream::new();
    };
    let v = idents::value(id);
    let kernel = op.kernel_ident();
    let moved = idents::value(args[k]);
    let config_binds = configs.iter().enumerate().map(|(i, c)| {
        let cid = idents::config(id, i);
        let value = super::verbatim(tape, c);
        quote!(let #cid = #value;)
    });
    let cfg: Vec<_> = (0..configs.len()).map(|i| idents::config(id, i)).collect();
    let f = quote!(#rt::ops::elem::#kernel);
    let call = match (args.len(), k, cfg.first(), op.strip_ident()) {
        (1, _, None, Some(strip)) => {
            quote!(#rt::reuse::unary_strips(#moved, #rt::fuse::#strip, #f))
        }
        (1, _, None, None) => quote!(#rt::reuse::unary(#moved, #f)),
        (1, _, Some(c), _) => quote!(#rt::reuse::unary_with(#moved, #c, #f)),
        (_, 0, _, _) => {
            let b = value_ref(tape, args[1]);
            let op_name = op.name;
            quote!(#rt::reuse::into_lhs(#moved, #b, #op_name, #f))
        }
        _ => {
            let a = value_ref(tape, args[0]);
            let op_name = op.name;
            quote!(#rt::reuse::into_rhs(#a, #moved, #op_name, #f))
        }
    };
    let call = quote_spanned!(node.span=> #call);
    // The unary kernels cannot fail: no `keep` around them; the binary ones fail where the
    // operands do not broadcast.
    let value = if args.len() == 1 {
        call
    } else {
        kept(tape, id, call)
    };
    quote! {
        #(#config_binds)*
        let (#v, #moved) = #value;
    }
}

/// The reverse block of node `id` where the plan changes it: `None` to emit the usual one.
pub fn emit_block(tape: &Tape, plan: &Plan, id: NodeId, reached: &[bool]) -> Option<TokenStream> {
    let rt = runtime();
    let node = tape.node(id);
    let NodeKind::Op { op, args, configs } = &node.kind else {
        return None;
    };
    let (g, ct) = (idents::grad(id), idents::cotangent());
    if let Some(u) = plan.splat_source(id) {
        // The reduction passes its scalar cotangent on.
        let (sp, x) = (local("sp", u), value_ref(tape, u));
        let splat = syn::Ident::new(&format!("{}_splat", op.name), Span::call_site());
        return Some(quote! {
            if let ::core::option::Option::Some(#ct) = #g {
                #sp = ::core::option::Option::Some(#rt::reuse::#splat(#ct, #x));
            }
        });
    }
    if plan.splat.contains_key(&id) {
        // The VJP in the output's buffer, added to the operand's slot; the ghost takes the
        // output's name.
        let (sp, y) = (local("sp", id), idents::value(id));
        let f = op.vjp_ident();
        let f = quote!(#rt::ops::elem::#f);
        let x = value_ref(tape, args[0]);
        let acc = if reached[args[0].0] {
            let slot = idents::grad(args[0]);
            quote!(#rt::acc_to(&mut #slot))
        } else {
            quote!(#rt::acc_skip())
        };
        let call = match configs.len() {
            0 if !op.reads.operands() => quote!(#rt::reuse::splat_vjp_output(#sp, #y, #f, #acc)),
            0 => quote!(#rt::reuse::splat_vjp(#sp, #x, #y, #f, #acc)),
            _ => {
                let c = idents::config(id, 0);
                quote!(#rt::reuse::splat_vjp_with(#sp, #x, #y, #c, #f, #acc))
            }
        };
        let call = quote_spanned!(node.span=> #call);
        let value = kept(tape, id, call);
        return Some(quote!(let #y = #value;));
    }
    if plan.owned_vjp.contains(&id) {
        let moved = local("m", args[0]);
        let (before, take, after) = move_out(args[0], &moved);
        let vjp = syn::Ident::new(&format!("{}_vjp_owned", op.kernel), Span::call_site());
        let family = syn::Ident::new(op.family, Span::call_site());
        let rest = args[1..].iter().map(|a| value_ref(tape, *a));
        let y = value_ref(tape, id);
        let cfg = (0..configs.len()).map(|i| idents::config(id, i));
        let accs = args.iter().map(|a| {
            if reached[a.0] {
                let slot = idents::grad(*a);
                quote!(#rt::acc_to(&mut #slot))
            } else {
                quote!(#rt::acc_skip())
            }
        });
        let call = quote_spanned! {node.span=>
            #rt::ops::#family::#vjp(#ct, #moved, #(#rest,)* #y, #(#cfg,)* #(#accs),*)
        };
        let call = kept(tape, id, call);
        return Some(quote! {
            #before
            {
                #take
                if let ::core::option::Option::Some(#ct) = #g {
                    #call;
                }
            }
            #after
        });
    }
    None
}

/// The scalar cotangent locals of the splat pairs, declared with the slots.
pub fn emit_splat_slots(tape: &Tape, plan: &Plan) -> TokenStream {
    let elem = tape.elem.tokens();
    let mut ids: Vec<&NodeId> = plan.splat.keys().collect();
    ids.sort();
    let decls = ids.into_iter().map(|u| {
        let sp = local("sp", *u);
        quote!(let mut #sp: ::core::option::Option<#elem> = ::core::option::Option::None;)
    });
    quote!(#(#decls)*)
}
