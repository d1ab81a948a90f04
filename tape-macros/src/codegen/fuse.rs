//! Fused elementwise groups: `_grad` computes a run of elementwise ops on arrays in one loop,
//! forward and backward, on plain floats through `ops::elem`.
//!
//! Input: the tape of `y = tanh(&(&y * a + b)) * x`, steps of a chain (nodes `mul`, `add`,
//! `tanh`, `mul`, then the next step's).
//!
//! Output, at the position of the group's last node:
//!
//! ```text
//! let (shape, len, x0, …) = match (fuse::layout(&[shape(x), shape(a), …]), fuse::slice(x), …) {
//!     (Some((shape, len)), Some(x0), …) => (shape, len, x0, …),
//!     _ => __tape_fallback!(),                    // returns the whole gradient, op by op
//! };
//! let mut saved = Vec::with_capacity(…);
//! for s in 0..fuse::strips(len) {                 // strips of fuse::LANES elements
//!     let xs0 = fuse::load(x0, base, len);
//!     let e3 = fuse::map2(&xs0, &xs1, elem::mul);  // every node over the strip, in order
//!     …
//!     fuse::store(&mut o10, &e10, base, len);     // the outputs (nodes read after the group)
//!     saved.extend_from_slice(&e5);               // the values the backward loop reads
//! }
//! let __tape_v10 = fuse::output_as(o10, shape, &t10)?;
//! let __tape_fuse10 = (len, saved);
//! ```
//!
//! The reverse sweep gets one block for the group, the backward loop over the same strips:
//! member cotangents as strips, each input's gradient summed into one buffer. A cheap member
//! whose value it reads (`y = t ⊙ x` for the next step's product) it computes again from the
//! kept `t` and the input `x` rather than keep a copy. Inputs must be
//! contiguous and of the group's shape, or broadcast along leading axes (a bias row, read
//! cyclically); otherwise `_grad` returns what `f_vjp` computes op by op (or, for functions
//! without one, a nested copy of its plain body), with the array kernels, which also report
//! any shape error.
//!
//! A group is a run of elementwise, non-scalar, unguarded nodes that no other node reads until
//! the run ends, so its block in the reverse sweep comes after every reader's. A run of one
//! node is left alone. Strips rather than single elements: each node runs over `LANES`
//! independent elements before the next, so a chain of `tanh`s does not wait on each result.

use super::{idents, is_optional, kept, runtime, value_ref};
use crate::ir::{NodeId, NodeKind, Tape, Verbatim};
use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use std::collections::{BTreeSet, HashMap};

/// The most groups one function fuses.
const MAX_GROUPS: usize = 8;

/// In a function of more than [`LONG`] nodes, the most nodes in one group: a longer run is cut
/// into groups of this many, joined by an array. LLVM's time on a group's loop body grows
/// faster than its length (a 308-node chain fused whole took 55 s to build in release, cut in
/// groups of 96 it took 23–34 s); in a shorter function a cut costs more (its arrays and
/// their gradients: 15 heap allocations per W2 gradient instead of 5) than it saves.
const MAX_MEMBERS: usize = 96;

/// See [`MAX_MEMBERS`].
const LONG: usize = 300;

/// The macro that runs a fused loop: `_grad` defines it to run the loop as a function of its
/// own (`fuse::outlined`), so that LLVM optimizes each loop apart from the rest of the body
/// ([`strip_loop_rules`]); a block of a long body, already a function of its own, redefines
/// it to run the loop in place.
pub fn strip_loop() -> Ident {
    Ident::new(STRIP_LOOP, Span::call_site())
}

/// The name of [`strip_loop`].
pub const STRIP_LOOP: &str = "__tape_loop";

/// Groups of at most this many nodes run their loops in place inside a block of a long body;
/// longer ones are always outlined: LLVM's time on a block holding a 96-node loop grows
/// faster than the two apart (1,008-node chain: release build 33 s with its loops outlined,
/// 41 s in place).
const INLINE_MEMBERS: usize = 32;

/// How `group` runs its loop: through [`strip_loop`] where it is short enough to run in place
/// inside a block, as `fuse::outlined` always where it is not.
fn strip_loop_for(group: &Group) -> TokenStream {
    if group.members.len() <= INLINE_MEMBERS {
        let strip_loop = strip_loop();
        quote!(#strip_loop!)
    } else {
        let rt = runtime();
        quote!(#rt::fuse::outlined)
    }
}

/// `_grad`'s definition of [`strip_loop`], or `inline` a block's.
pub fn strip_loop_rules(inline: bool) -> TokenStream {
    let (rt, strip_loop) = (runtime(), strip_loop());
    let run = if inline {
        quote!({ $($code)* })
    } else {
        quote!(#rt::fuse::outlined(|| { $($code)* }))
    };
    quote! {
        #[allow(unused_macros)]
        macro_rules! #strip_loop {
            (|| $($code:tt)*) => { #run };
        }
    }
}

/// One fused group.
#[derive(Debug, Clone)]
pub struct Group {
    /// Its nodes, in tape order.
    pub members: Vec<NodeId>,
    /// Nodes outside the group that its nodes read, arrays (known scalars are in `scalars`).
    pub inputs: Vec<NodeId>,
    /// Known-scalar nodes outside the group that its nodes read.
    pub scalars: Vec<NodeId>,
    /// Members read after the group: materialized as arrays.
    pub outputs: Vec<NodeId>,
    /// Members whose values the backward loop reads from the group's buffer.
    pub saved: Vec<NodeId>,
    /// Members whose values the backward loop reads and computes again from operands it has
    /// at hand (cheap ops of saved members and inputs), in tape order.
    pub recomputed: Vec<NodeId>,
    /// Outputs whose values the backward loop reads: from their arrays, not a second copy.
    pub read_outputs: Vec<NodeId>,
    /// For each output, the inputs it depends on (indices into `inputs`): one of them must
    /// cover all the group's elements, or the output would be a broadcast row, not an array
    /// of the group's shape.
    pub output_deps: Vec<Vec<usize>>,
}

impl Group {
    /// The last member: where the group's forward code goes, and its backward block.
    pub fn last(&self) -> NodeId {
        self.members[self.members.len() - 1]
    }
}

/// The fusion plan for `_grad`: a copy of the tape with [`Node::group`](crate::ir::Node)
/// set, and the groups.
pub fn plan(tape: &Tape) -> (Tape, Vec<Group>) {
    let mut groups = split_runs(tape);
    // Only the largest few: each fused group adds loops and locals that rustc's borrow checker
    // pays for across the whole function, superlinearly with hundreds of small groups.
    if groups.len() > MAX_GROUPS {
        let mut by_size: Vec<usize> = (0..groups.len()).collect();
        by_size.sort_by_key(|&g| std::cmp::Reverse(groups[g].members.len()));
        let keep: BTreeSet<usize> = by_size.into_iter().take(MAX_GROUPS).collect();
        groups = groups
            .into_iter()
            .enumerate()
            .filter(|(g, _)| keep.contains(g))
            .map(|(_, group)| group)
            .collect();
    }
    let mut fused = tape.clone();
    for (g, group) in groups.iter().enumerate() {
        for m in &group.members {
            fused.nodes[m.0].group = Some(g);
        }
    }
    (fused, groups)
}

/// The runs of eligible nodes, each ended by the first outside node that reads it.
fn split_runs(tape: &Tape) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut open: Vec<NodeId> = Vec::new();
    let mut in_open = vec![false; tape.nodes.len()];
    let max_members = if tape.nodes.len() > LONG {
        MAX_MEMBERS
    } else {
        usize::MAX
    };
    let reached = tape.reached();
    let last_read = last_reads(tape);
    let close = |open: &mut Vec<NodeId>, in_open: &mut Vec<bool>, groups: &mut Vec<Group>| {
        for m in open.iter() {
            in_open[m.0] = false;
        }
        if open.len() >= 2 {
            groups.push(group(tape, &reached, &last_read, std::mem::take(open)));
        }
        open.clear();
    };
    for node in &tape.nodes {
        if eligible(tape, node.id) {
            if open.len() == max_members {
                close(&mut open, &mut in_open, &mut groups);
            }
            open.push(node.id);
            in_open[node.id.0] = true;
        } else if uses(tape, node.id).iter().any(|u| in_open[u.0]) {
            close(&mut open, &mut in_open, &mut groups);
        }
    }
    close(&mut open, &mut in_open, &mut groups);
    groups
}

/// Whether a node may join a group: an elementwise op on arrays outside any branch, that is
/// not the function's output and has no constant argument reading other nodes.
fn eligible(tape: &Tape, id: NodeId) -> bool {
    let node = tape.node(id);
    let NodeKind::Op { op, args, configs } = &node.kind else {
        return false;
    };
    op.elementwise
        && !op.checked
        && !node.scalar
        && node.guard.is_empty()
        && id != tape.output
        && configs.iter().all(|c| c.captures.is_empty())
        && args.iter().all(|a| !is_optional(tape, *a))
}

/// Every node whose value node `id` reads: its operands, and the names its constant code
/// captures.
pub fn uses(tape: &Tape, id: NodeId) -> Vec<NodeId> {
    let node = tape.node(id);
    let mut out = node.parents();
    let captured = |code: &Verbatim, out: &mut Vec<NodeId>| {
        out.extend(code.captures.iter().map(|c| c.node));
    };
    match &node.kind {
        NodeKind::Const(code) | NodeKind::Cond(code) => captured(code, &mut out),
        NodeKind::Select { cond, .. } => out.push(*cond),
        NodeKind::Op { configs, .. } => configs.iter().for_each(|c| captured(c, &mut out)),
        NodeKind::Param(_) | NodeKind::Call { .. } => {}
    }
    out
}

/// For each node, the id of the last node that reads it (`usize::MAX` when the auxiliary
/// outputs read it, 0 when nothing does).
fn last_reads(tape: &Tape) -> Vec<usize> {
    let mut last = vec![0; tape.nodes.len()];
    for node in &tape.nodes {
        for u in uses(tape, node.id) {
            last[u.0] = last[u.0].max(node.id.0);
        }
    }
    if let Some(aux) = &tape.aux {
        for c in &aux.code.captures {
            last[c.node.0] = usize::MAX;
        }
    }
    last
}

fn group(tape: &Tape, reached: &[bool], last_read: &[usize], members: Vec<NodeId>) -> Group {
    let set: BTreeSet<NodeId> = members.iter().copied().collect();
    let last = members[members.len() - 1];
    // Read after the group: by a later node, the output, or the auxiliary outputs.
    let read_after: BTreeSet<NodeId> = members
        .iter()
        .copied()
        .filter(|m| last_read[m.0] > last.0)
        .collect();
    let mut inputs = Vec::new();
    let mut scalars = Vec::new();
    let mut saved = BTreeSet::new();
    // Inputs and scalars that the backward loop reads for some VJP.
    let mut read_back = BTreeSet::new();
    for m in &members {
        let NodeKind::Op { op, args, .. } = &tape.node(*m).kind else {
            continue;
        };
        for a in args {
            if op.reads.operands() && reached[m.0] {
                if set.contains(a) {
                    saved.insert(*a);
                } else {
                    read_back.insert(*a);
                }
            }
            if set.contains(a) {
                continue;
            }
            if tape.node(*a).scalar {
                if !scalars.contains(a) {
                    scalars.push(*a);
                }
            } else if !inputs.contains(a) {
                inputs.push(*a);
            }
        }
        if op.reads.output() && reached[m.0] {
            saved.insert(*m);
        }
    }
    // The inputs each member depends on, through the group.
    let mut deps: HashMap<NodeId, BTreeSet<usize>> = HashMap::new();
    for m in &members {
        let mut own = BTreeSet::new();
        for a in tape.node(*m).parents() {
            if let Some(k) = inputs.iter().position(|x| *x == a) {
                own.insert(k);
            } else if let Some(d) = deps.get(&a) {
                own.extend(d.iter().copied());
            }
        }
        deps.insert(*m, own);
    }
    let outputs: Vec<NodeId> = members
        .iter()
        .copied()
        .filter(|m| read_after.contains(m))
        .collect();
    let (read_outputs, saved): (Vec<NodeId>, Vec<NodeId>) =
        saved.into_iter().partition(|m| outputs.contains(m));
    // A member the backward loop has: one it reads back (kept, or itself computed again
    // before, in tape order) or an output's array; an input or scalar some VJP reads.
    let at_hand = |a: &NodeId| {
        if set.contains(a) {
            saved.contains(a) || read_outputs.contains(a)
        } else {
            read_back.contains(a)
        }
    };
    let recomputed: Vec<NodeId> = saved
        .iter()
        .copied()
        .filter(|m| match &tape.node(*m).kind {
            NodeKind::Op { op, args, configs } => {
                op.cheap && configs.is_empty() && args.iter().all(at_hand)
            }
            _ => false,
        })
        .collect();
    let saved = saved
        .into_iter()
        .filter(|m| !recomputed.contains(m))
        .collect();
    Group {
        output_deps: outputs
            .iter()
            .map(|o| deps[o].iter().copied().collect())
            .collect(),
        outputs,
        members,
        inputs,
        scalars,
        saved,
        recomputed,
        read_outputs,
    }
}

/// A local of the fused code: `__tape_<prefix><n>`, hygienic.
fn local(prefix: &str, n: impl std::fmt::Display) -> Ident {
    format_ident!(
        "__tape_{}{}",
        prefix,
        n.to_string(),
        span = Span::mixed_site()
    )
}

fn input_slice(k: usize) -> Ident {
    local("x", k)
}

fn input_strip(k: usize) -> Ident {
    local("xs", k)
}

fn element(id: NodeId) -> Ident {
    local("e", id.0)
}

fn out_buffer(id: NodeId) -> Ident {
    local("o", id.0)
}

fn input_grad(k: usize) -> Ident {
    local("dx", k)
}

fn output_grad(id: NodeId) -> Ident {
    local("go", id.0)
}

fn output_grad_strip(id: NodeId) -> Ident {
    local("gs", id.0)
}

fn partial(id: NodeId) -> Ident {
    local("p", id.0)
}

fn partial_part(id: NodeId, k: usize) -> Ident {
    local("p", format!("{}_{}", id.0, k))
}

fn scalar_grad(id: NodeId) -> Ident {
    local("ds", id.0)
}

/// The local holding a group's fused state: `Some((len, saved, input slices))` where it ran
/// fused.
pub fn state(group: &Group) -> Ident {
    local("fuse", group.last().0)
}

fn type_witness(id: NodeId) -> Ident {
    local("t", id.0)
}

fn ident(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// A member's operand as a strip: another member's, an input's, or a scalar on every lane.
fn operand(tape: &Tape, group: &Group, a: NodeId) -> TokenStream {
    let rt = runtime();
    if let Some(k) = group.inputs.iter().position(|x| *x == a) {
        let x = input_strip(k);
        quote!(&#x)
    } else if group.scalars.contains(&a) {
        let v = super::scalar_value(tape, a);
        quote!(&#rt::fuse::splat(#v))
    } else {
        let e = element(a);
        quote!(&#e)
    }
}

/// `let e<m> = …;`: member `m` over the strip, from its operands' strips.
fn member_strip(tape: &Tape, group: &Group, m: NodeId) -> TokenStream {
    let rt = runtime();
    let elem = tape.elem.tokens();
    let node = tape.node(m);
    let NodeKind::Op { op, args, configs } = &node.kind else {
        return TokenStream::new();
    };
    let kernel = op.kernel_ident();
    let e = element(m);
    let ops = args.iter().map(|a| operand(tape, group, *a));
    let cfg = (0..configs.len()).map(|k| idents::config(m, k));
    // One call per node with the op's function item, no closure and no loop here: rustc
    // checks a closure or a loop together with its enclosing function, and thousands of
    // them make that superlinear.
    let f = quote!(#rt::ops::elem::#kernel);
    let shared = op.heavy.kernel();
    let call = match (args.len(), cfg.len(), op.strip_ident(), shared) {
        (1, 0, Some(strip), _) => quote!(#rt::fuse::#strip(#(#ops,)*)),
        (1, 0, None, false) => quote!(#rt::fuse::map1(#(#ops,)* #f)),
        (1, 0, None, true) => quote!(#rt::fuse::map1_shared(#(#ops,)* #f)),
        (1, _, _, false) => quote!(#rt::fuse::map1_with(#(#ops,)* #(#cfg,)* #f)),
        (1, _, _, true) => quote!(#rt::fuse::map1_with_shared(#(#ops,)* #(#cfg,)* #f)),
        _ => quote!(#rt::fuse::map2(#(#ops,)* #f)),
    };
    quote_spanned! {node.span=>
        let #e: #rt::fuse::Strip<#elem> = #call;
    }
}

/// The group's forward code: the fused loop, or (`unfused`, an expression that returns) the
/// whole gradient computed op by op.
///
/// With `recycle = Some(k)`, input `k` is read nowhere after the loop: it is moved into a
/// buffer that the loop reads strip by strip and, where it covers the group, overwrites with
/// the first output (`reuse`'s plan).
pub fn emit_forward(
    tape: &Tape,
    group: &Group,
    unfused: &TokenStream,
    recycle: Option<usize>,
) -> TokenStream {
    let rt = runtime();
    let strip_loop = strip_loop_for(group);
    let elem = tape.elem.tokens();
    let (len, s, saved) = (
        ident("__tape_len"),
        ident("__tape_s"),
        ident("__tape_saved"),
    );
    let base = ident("__tape_base");
    let st = state(group);
    let slices: Vec<_> = (0..group.inputs.len()).map(input_slice).collect();
    let strips: Vec<_> = (0..group.inputs.len()).map(input_strip).collect();
    let input_refs: Vec<_> = group.inputs.iter().map(|x| value_ref(tape, *x)).collect();
    let (buffer, in_place) = (ident("__tape_r"), ident("__tape_in_place"));
    // Where input `k` is read from: its slice, or the recycled buffer.
    let source = |k: usize| -> TokenStream {
        if recycle == Some(k) {
            quote!(#buffer.as_slice())
        } else {
            let x = input_slice(k);
            quote!(#x)
        }
    };
    let recycled_output = recycle.and(group.outputs.first().copied());
    // Configs are constants (no captures): evaluated once, before the loops.
    let mut config_binds = Vec::new();
    for m in &group.members {
        if let NodeKind::Op { configs, .. } = &tape.node(*m).kind {
            for (k, c) in configs.iter().enumerate() {
                let cid = idents::config(*m, k);
                let code = &c.tokens;
                config_binds.push(quote!(let #cid = #code;));
            }
        }
    }
    // The loop body: every member over the strip, in tape order.
    let body = group.members.iter().map(|m| member_strip(tape, group, *m));
    let saved_elems: Vec<_> = group.saved.iter().map(|s| element(*s)).collect();
    let n_saved = group.saved.len();
    // Each output's type, as its kernels would give it: the broadcast of the inputs it
    // depends on, owned. An elementwise op's type is decided by its operands' dimensions
    // alone, and broadcasting them is associative, commutative and idempotent, so the inputs
    // suffice: a few type-level calls per output instead of two per member. An output of
    // known scalars only (none of the group's array inputs) is a scalar.
    let types = group
        .outputs
        .iter()
        .zip(&group.output_deps)
        .map(|(o, deps)| {
            let t = type_witness(*o);
            let mut leaves = deps.iter().map(|k| {
                let v = value_ref(tape, group.inputs[*k]);
                quote!(#rt::fuse::ty_of(#v))
            });
            let folded = match leaves.next() {
                Some(first) => {
                    leaves.fold(first, |acc, x| quote!(#rt::fuse::ty_binary(&#acc, &#x)))
                }
                None => quote!(#rt::fuse::ty_of(&#rt::ops::arith::one::<#elem>())),
            };
            quote!(let #t = #rt::fuse::ty_unary(&#folded);)
        });
    let full = ident("__tape_shape");
    let output_values = group.outputs.iter().map(|o| {
        let (v, buffer, t) = (idents::value(*o), out_buffer(*o), type_witness(*o));
        let value = kept(tape, *o, quote!(#rt::fuse::output_as(#buffer, #full, &#t)));
        quote!(let #v = #value;)
    });
    // Every output must cover the group's elements (not only read broadcast rows).
    let covered = group.output_deps.iter().map(|deps| {
        let covering = deps.iter().map(|k| {
            let x = source(*k);
            quote!(#x.len() == #len)
        });
        quote!((false #(|| #covering)*))
    });
    let shapes = input_refs.iter().map(|x| quote!(#rt::Tensor::shape_of(#x)));
    let slice_calls = input_refs.iter().enumerate().map(|(k, x)| {
        if recycle == Some(k) {
            quote!(::core::option::Option::Some(()))
        } else {
            quote!(#rt::fuse::slice(#x))
        }
    });
    let somes = slices
        .iter()
        .map(|s| quote!(::core::option::Option::Some(#s)));
    let sources: Vec<_> = (0..group.inputs.len()).map(source).collect();
    // The recycled input: moved into a buffer, its ghost left for the shape reads after.
    let take = recycle.map(|k| {
        let v = group.inputs[k];
        let moved = local("m", v.0);
        let (before, take, after) = super::reuse::move_out(v, &moved);
        quote! {
            #before
            #take
            let mut #buffer: ::std::vec::Vec<#elem> = #rt::fuse::into_buffer(#moved);
            #after
        }
    });
    let buffers = group.outputs.iter().map(|o| {
        let out = out_buffer(*o);
        if recycled_output == Some(*o) {
            quote! {
                let #in_place = #buffer.len() == #len;
                let mut #out: ::std::vec::Vec<#elem> = ::std::vec::Vec::with_capacity(
                    if #in_place { 0 } else { #len },
                );
            }
        } else {
            quote!(let mut #out: ::std::vec::Vec<#elem> = ::std::vec::Vec::with_capacity(#len);)
        }
    });
    let stores = group.outputs.iter().map(|o| {
        let (out, e) = (out_buffer(*o), element(*o));
        if recycled_output == Some(*o) {
            quote!(#rt::fuse::store_either(&mut #buffer, &mut #out, #in_place, &#e, #base, #len);)
        } else {
            quote!(#rt::fuse::store(&mut #out, &#e, #base, #len);)
        }
    });
    let pick = recycled_output.map(|o| {
        let out = out_buffer(o);
        quote!(let #out = if #in_place { #buffer } else { #out };)
    });
    quote! {
        #(#config_binds)*
        #(#types)*
        #take
        let (#full, #len, #(#slices,)*) = match (#rt::fuse::layout(&[#(#shapes),*]), #(#slice_calls,)*) {
            (::core::option::Option::Some((#full, #len)), #(#somes,)*) => (#full, #len, #(#slices,)*),
            _ => #unfused,
        };
        if !(true #(&& #covered)*) {
            #unfused;
        }
        #(#buffers)*
        let mut #saved: ::std::vec::Vec<#elem> = ::std::vec::Vec::with_capacity(
            #rt::fuse::strips(#len) * #n_saved * #rt::fuse::LANES,
        );
        #strip_loop(|| for #s in 0..#rt::fuse::strips(#len) {
            let #base = #s * #rt::fuse::LANES;
            #(let #strips = #rt::fuse::load(#sources, #base, #len);)*
            #(#body)*
            #(#stores)*
            #(#saved.extend_from_slice(&#saved_elems);)*
        });
        #pick
        #(#output_values)*
        let #st = (#len, #saved);
    }
}

/// The group's reverse block: the backward loop.
pub fn emit_backward(tape: &Tape, group: &Group, reached: &[bool]) -> TokenStream {
    let rt = runtime();
    let strip_loop = strip_loop_for(group);
    let elem = tape.elem.tokens();
    let (len, s, saved) = (
        ident("__tape_len"),
        ident("__tape_s"),
        ident("__tape_saved"),
    );
    let base = ident("__tape_base");
    let st = state(group);
    let slices: Vec<_> = (0..group.inputs.len()).map(input_slice).collect();
    let input_refs: Vec<_> = group.inputs.iter().map(|x| value_ref(tape, *x)).collect();
    let zero = quote!(#rt::ops::arith::zero::<#elem>());
    let n_saved = group.saved.len();
    // The cotangents the group's outputs received.
    let reached_outputs: Vec<NodeId> = group
        .outputs
        .iter()
        .copied()
        .filter(|o| reached[o.0])
        .collect();
    // The first reached output's cotangent buffer becomes the first reached input's gradient
    // where both cover the whole group (checked at run time by `fuse::reuse`): each strip of
    // the cotangent is read before the input's share is added there.
    let first_input = group.inputs.iter().position(|x| reached[x.0]);
    let recycled = reached_outputs.first().copied().zip(first_input);
    let taken = ident("__tape_taken");
    let output_grads = reached_outputs.iter().map(|o| {
        let (go, slot) = (output_grad(*o), idents::grad(*o));
        let cotangent = kept(tape, *o, quote!(#rt::fuse::cotangent(&#slot, #len)));
        quote!(let #go = #cotangent;)
    });
    let output_strips = reached_outputs.iter().map(|o| {
        let (go, gs) = (output_grad(*o), output_grad_strip(*o));
        match recycled {
            Some((r, k)) if r == *o => {
                let d = input_grad(k);
                quote!(let #gs = #rt::fuse::load_or_take(&#go, &mut #d, #taken, #base, #len);)
            }
            _ => quote!(let #gs = #rt::fuse::load_cotangent(&#go, #base);),
        }
    });
    // Gradient buffers of the reached inputs, and sums for reached scalars.
    let input_grads = group
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, x)| reached[x.0])
        .map(|(k, x)| {
            // The element count from the shape: a recycled input is a ghost without elements.
            let (d, like) = (input_grad(k), value_ref(tape, *x));
            match recycled {
                Some((o, r)) if r == k => {
                    let slot = idents::grad(o);
                    quote! {
                        let (mut #d, #taken) =
                            #rt::fuse::reuse(&mut #slot, #rt::fuse::elements(#like), #len);
                    }
                }
                _ => quote!(let mut #d = #rt::fuse::zeros::<#elem>(#rt::fuse::elements(#like));),
            }
        });
    let scalar_sums = group.scalars.iter().filter(|s| reached[s.0]).map(|s| {
        let p = scalar_grad(*s);
        quote!(let mut #p = #zero;)
    });
    let input_strips = group.inputs.iter().enumerate().map(|(k, _)| {
        let (x, xs) = (input_slice(k), input_strip(k));
        quote!(let #xs = #rt::fuse::load(#x, #base, #len);)
    });
    let loads = group.saved.iter().enumerate().map(|(k, m)| {
        let e = element(*m);
        quote!(let #e = #rt::fuse::saved(#saved, #s, #n_saved, #k);)
    });
    let output_loads = group.read_outputs.iter().map(|o| {
        let (e, v) = (element(*o), value_ref(tape, *o));
        quote!(let #e = #rt::fuse::load(#rt::fuse::slice_or_empty(#v), #base, #len);)
    });
    let recomputed = group
        .recomputed
        .iter()
        .map(|m| member_strip(tape, group, *m));
    // Every reached member, last to first, over the strip.
    let c = ident("__tape_c");
    let mut contributions: HashMap<NodeId, Vec<Ident>> = HashMap::new();
    let mut body = Vec::new();
    for m in group.members.iter().rev().filter(|m| reached[m.0]) {
        let node = tape.node(*m);
        let NodeKind::Op { op, args, configs } = &node.kind else {
            continue;
        };
        let mut terms = contributions.remove(m).unwrap_or_default();
        if reached_outputs.contains(m) {
            terms.push(output_grad_strip(*m));
        }
        if terms.is_empty() {
            continue;
        }
        let d = partial(*m);
        let vjp = op.vjp_ident();
        // A value the VJP does not read (the op table's `reads`) is passed as the cotangent, a
        // strip of its type.
        let read_or_cotangent = |n: NodeId| {
            if group.saved.contains(&n)
                || group.recomputed.contains(&n)
                || group.read_outputs.contains(&n)
                || !group.members.contains(&n)
            {
                operand(tape, group, n)
            } else {
                quote!(&#c)
            }
        };
        let ops: Vec<_> = args.iter().map(|a| read_or_cotangent(*a)).collect();
        let y = read_or_cotangent(*m);
        let cfg: Vec<_> = (0..configs.len()).map(|k| idents::config(*m, k)).collect();
        let f = quote!(#rt::ops::elem::#vjp);
        let mut terms = terms.into_iter();
        let first = terms.next().map(|t| quote!(#t));
        let cotangent = terms.fold(first, |sum, t| {
            Some(quote!(#rt::fuse::map2(&#sum, &#t, #rt::ops::elem::add)))
        });
        body.push(quote!(let #c: #rt::fuse::Strip<#elem> = #cotangent;));
        let parts: Vec<Option<Ident>> = if args.len() == 1 {
            let call = match (cfg.is_empty(), op.heavy.vjp()) {
                (true, false) => quote!(#rt::fuse::vjp1(&#c, #(#ops,)* #y, #f)),
                (true, true) => quote!(#rt::fuse::vjp1_shared(&#c, #(#ops,)* #y, #f)),
                (false, false) => {
                    quote!(#rt::fuse::vjp1_with(&#c, #(#ops,)* #y, #(#cfg,)* #f))
                }
                (false, true) => {
                    quote!(#rt::fuse::vjp1_with_shared(&#c, #(#ops,)* #y, #(#cfg,)* #f))
                }
            };
            body.push(quote_spanned!(node.span=> let #d: #rt::fuse::Strip<#elem> = #call;));
            vec![Some(d.clone())]
        } else {
            // A part that goes to an input's gradient is added there by the VJP's call itself:
            // the first operand's where both go to inputs, so that an input used twice (`x * x`)
            // sums its parts in operand order, as the op-by-op VJP does.
            let input = |i: usize| {
                let a = args[i];
                (reached[a.0] && !group.members.contains(&a))
                    .then(|| group.inputs.iter().position(|x| *x == a))
                    .flatten()
                    .map(|k| (i, k))
            };
            match input(0).or_else(|| input(1)) {
                Some((into, k)) => {
                    let (dx, kept) = (input_grad(k), partial_part(*m, 1 - into));
                    body.push(quote_spanned! {node.span=>
                        let #kept = #rt::fuse::vjp2_into(&#c, #(#ops,)* #f, #into, &mut #dx, #base, #len);
                    });
                    let mut parts = vec![None, None];
                    parts[1 - into] = Some(kept);
                    parts
                }
                None => {
                    let (p0, p1) = (partial_part(*m, 0), partial_part(*m, 1));
                    body.push(quote_spanned! {node.span=>
                        let (#p0, #p1) = #rt::fuse::vjp2(&#c, #(#ops,)* #f);
                    });
                    vec![Some(p0), Some(p1)]
                }
            }
        };
        for (a, part) in args.iter().zip(parts) {
            let Some(part) = part.filter(|_| reached[a.0]) else {
                continue;
            };
            if group.members.contains(a) {
                contributions.entry(*a).or_default().push(part);
            } else if let Some(k) = group.inputs.iter().position(|x| x == a) {
                let dx = input_grad(k);
                body.push(quote!(#rt::fuse::add_to(&mut #dx, &#part, #base, #len);));
            } else {
                let p = scalar_grad(*a);
                body.push(quote!(#p += #rt::fuse::sum_valid(&#part, #base, #len);));
            }
        }
    }
    // After the loop: the inputs' gradients into their slots.
    let last = group.last();
    let puts_inputs = group
        .inputs
        .iter()
        .enumerate()
        .filter(|(_, x)| reached[x.0])
        .map(|(k, x)| {
            let (d, slot, like) = (input_grad(k), idents::grad(*x), value_ref(tape, *x));
            let shaped = kept(
                tape,
                last,
                quote!(#rt::fuse::output(#d, #rt::Tensor::shape_of(#like))),
            );
            let put = kept(tape, last, quote!(#rt::acc_to(&mut #slot).put(#d)));
            quote! {
                let #d = #shaped;
                #put;
            }
        });
    let puts_scalars = group.scalars.iter().filter(|s| reached[s.0]).map(|s| {
        let (p, slot) = (scalar_grad(*s), idents::grad(*s));
        quote!(#rt::ops::elem::accumulate(&mut #slot, #p);)
    });
    quote! {
        {
            // The inputs' slices again, rather than borrows kept alive across the function
            // (many long-lived borrows make rustc's region checking superlinear).
            let (#len, #saved) = &#st;
            #(let #slices = #rt::fuse::slice_or_empty(#input_refs);)*
            let #len = *#len;
            #(#input_grads)*
            #(#output_grads)*
            #(#scalar_sums)*
            #strip_loop(|| for #s in 0..#rt::fuse::strips(#len) {
                let #base = #s * #rt::fuse::LANES;
                #(#input_strips)*
                #(#output_strips)*
                #(#loads)*
                #(#output_loads)*
                #(#recomputed)*
                #(#body)*
            });
            #(#puts_inputs)*
            #(#puts_scalars)*
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lower::lower;
    use syn::parse_quote;

    /// The groups of `steps` steps of three elementwise nodes each, all one run.
    fn groups_of(steps: usize) -> (Tape, Vec<Group>) {
        let steps = syn::LitInt::new(&steps.to_string(), Span::call_site());
        let tape = lower(parse_quote! {
            fn f(x: &Array1<f64>, a: &Array1<f64>) -> f64 {
                let mut y = x * 1.0;
                for _ in 0..#steps {
                    y = tanh(&(&y * a)) + x;
                }
                y.sum()
            }
        })
        .unwrap();
        let (_, groups) = plan(&tape);
        (tape, groups)
    }

    #[test]
    fn long_runs_of_long_functions_are_cut_into_groups() {
        // A run of about 330 nodes.
        let (tape, groups) = groups_of(110);
        assert!(tape.nodes.len() > LONG);
        let sizes: Vec<usize> = groups.iter().map(|g| g.members.len()).collect();
        assert!(sizes.len() >= 4, "{sizes:?}");
        assert!(sizes.iter().all(|&n| n <= MAX_MEMBERS), "{sizes:?}");
        assert!(sizes.iter().sum::<usize>() >= 330, "{sizes:?}");
    }

    #[test]
    fn the_backward_loop_computes_cheap_members_again() {
        let (tape, groups) = groups_of(4);
        let op_of = |m: &NodeId| match &tape.node(*m).kind {
            NodeKind::Op { op, .. } => op.name,
            _ => "not an op",
        };
        let group = &groups[0];
        // `mul`'s VJP reads `y`, `x * 1.0` and the sums `t + x`: computed again from `tanh`'s
        // kept outputs and the input `x`, which the backward loop reads anyway.
        let saved: Vec<_> = group.saved.iter().map(op_of).collect();
        assert_eq!(saved, ["tanh"; 4]);
        let recomputed: Vec<_> = group.recomputed.iter().map(op_of).collect();
        assert_eq!(recomputed, ["mul", "add", "add", "add"]);
        // The last sum, the group's output, is read by `sum`, whose VJP reads nothing.
        assert_eq!(group.outputs.len(), 1);
        assert!(group.read_outputs.is_empty());
    }

    #[test]
    fn shorter_functions_keep_their_runs_whole() {
        let (_, groups) = groups_of(40);
        assert_eq!(groups.len(), 1);
        assert!(groups[0].members.len() > MAX_MEMBERS);
    }
}
