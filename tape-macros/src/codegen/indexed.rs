//! Arrays read element by element, `x[i]`.
//!
//! A reached read outside any branch adds its cotangent into a plain buffer of elements (one
//! local, `__tape_ix{a}`) rather than into `x`'s gradient slot; the buffer joins the slot
//! before `x`'s own block. In `_grad`, where every such read of a vector parameter has an
//! index the macro knows (an unrolled loop's `x[i + 1]`), the vector is viewed once as a
//! fixed-size array and read, and its cotangents collected, with no bounds checks; a vector
//! that does not fit sends `_grad` to its op-by-op fallback.

use super::{idents, is_optional, runtime, value_ref, verbatim};
use crate::ir::{NodeId, NodeKind, ParamKind, Tape};
use proc_macro2::{Span, TokenStream};
use quote::quote;

/// The arrays read element by element (`x[i]`, reached, outside any branch): their `index`
/// VJPs add into a plain buffer of elements, one local that stays in registers, instead of
/// each checking `x`'s gradient slot.
#[derive(Default)]
pub struct Indexed {
    /// Each array read element by element.
    pub arrays: Vec<NodeId>,
    /// Of those, the vector parameters (`&Array1<F>`) whose every read has an index the macro
    /// knows (`x[i + 1]` in an unrolled loop), with one more than the largest: `_grad` reads
    /// them from a fixed-size array ([`fixed_view`]) with no bounds check, into a
    /// fixed-size buffer.
    pub fixed: Vec<(NodeId, usize)>,
}

/// The largest fixed-size buffer, in elements: longer vectors keep the checked reads.
const FIXED_MAX: usize = 1024;

impl Indexed {
    /// Whether `a` is read element by element.
    pub fn contains(&self, a: &NodeId) -> bool {
        self.arrays.contains(a)
    }

    /// How many elements of `a` its fixed-size reads cover.
    pub fn fixed_len(&self, a: NodeId) -> Option<usize> {
        self.fixed.iter().find(|(f, _)| *f == a).map(|(_, n)| *n)
    }

    /// The array and index of node `id`, an `x[i]` read from a fixed-size array.
    pub fn fixed_read(&self, tape: &Tape, id: NodeId) -> Option<(NodeId, usize)> {
        let (a, k) = known_read(tape, id)?;
        self.fixed_len(a).map(|_| (a, k))
    }
}

/// The arrays read element by element; with `fixed`, those read at known indices too (only
/// `_grad`, whose op-by-op fallback reports a vector too short for them).
pub fn indexed(tape: &Tape, reached: &[bool], fixed: bool) -> Indexed {
    let mut out = Indexed::default();
    let reads = |a: NodeId| {
        tape.nodes.iter().filter(move |node| {
            matches!(&node.kind, NodeKind::Op { op, args, .. } if op.name == "index" && args[0] == a)
                && reached[node.id.0]
                && node.guard.is_empty()
        })
    };
    for node in &tape.nodes {
        if let NodeKind::Op { op, args, .. } = &node.kind {
            let a = args[0];
            if op.name == "index"
                && reached[node.id.0]
                && reached[a.0]
                && node.guard.is_empty()
                && !is_optional(tape, a)
                && !tape.node(a).scalar
                && !out.arrays.contains(&a)
            {
                out.arrays.push(a);
            }
        }
    }
    if fixed {
        for &a in &out.arrays {
            let is_vector_ref = matches!(tape.node(a).kind, NodeKind::Param(i)
                if tape.params[i].kind == ParamKind::ArrayRef);
            let known: Option<Vec<usize>> = reads(a)
                .map(|n| known_read(tape, n.id).map(|(_, k)| k))
                .collect();
            if let (true, Some(Some(largest))) = (is_vector_ref, known.map(|k| k.into_iter().max()))
            {
                if largest < FIXED_MAX {
                    out.fixed.push((a, largest + 1));
                }
            }
        }
    }
    out
}

/// The array and index of node `id` where it reads `x[i]` at an index the macro knows.
fn known_read(tape: &Tape, id: NodeId) -> Option<(NodeId, usize)> {
    match &tape.node(id).kind {
        NodeKind::Op { op, args, configs } if op.name == "index" => {
            let k = usize::try_from(configs.first()?.known?).ok()?;
            Some((args[0], k))
        }
        _ => None,
    }
}

/// `let __tape_xa{a}: &[F; N] = …;`: vector parameter `a` as a fixed-size array, or the
/// op-by-op `fallback` where it is not 1-d, contiguous and `N` long.
pub fn fixed_view(tape: &Tape, a: NodeId, n: usize, fallback: &TokenStream) -> TokenStream {
    let rt = runtime();
    let elem = tape.elem.tokens();
    let (xa, like) = (fixed_array(a), value_ref(tape, a));
    quote! {
        let #xa: &[#elem; #n] = match #rt::fuse::fixed(#like) {
            ::core::option::Option::Some(xa) => xa,
            ::core::option::Option::None => return #fallback,
        };
    }
}

/// `let __tape_vK = __tape_xa{a}[k];`: read `id` from its fixed-size array (its index's
/// local is still bound, as the checked read binds it).
pub fn emit_fixed_read(tape: &Tape, id: NodeId, a: NodeId, k: usize) -> TokenStream {
    let (v, xa) = (idents::value(id), fixed_array(a));
    let binds = match &tape.node(id).kind {
        NodeKind::Op { configs, .. } => configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (cid, code) = (idents::config(id, i), verbatim(tape, c));
                quote!(let #cid = #code;)
            })
            .collect(),
        _ => Vec::new(),
    };
    quote! {
        #(#binds)*
        let #v = #xa[#k];
    }
}

/// The local holding vector parameter `a` as a fixed-size array.
fn fixed_array(a: NodeId) -> syn::Ident {
    syn::Ident::new(&format!("__tape_xa{}", a.0), Span::mixed_site())
}

/// `let mut __tape_ix{a} = zeros(elements(a));`: the buffer of `a`'s `x[i]` contributions
/// (`[0; N]` for a fixed-size array).
pub fn declare_index_total(tape: &Tape, a: NodeId, indexed: &Indexed) -> TokenStream {
    let rt = runtime();
    let elem = tape.elem.tokens();
    let (ix, like) = (index_total(a), value_ref(tape, a));
    if let Some(n) = indexed.fixed_len(a) {
        return quote! {
            let mut #ix: [#elem; #n] = [#rt::ops::arith::zero::<#elem>(); #n];
        };
    }
    quote! {
        let mut #ix: ::std::vec::Vec<#elem> =
            #rt::fuse::zeros::<#elem>(#rt::fuse::elements(#like));
    }
}

/// The local collecting the `x[i]` contributions to array `a`'s gradient.
pub fn index_total(a: NodeId) -> syn::Ident {
    syn::Ident::new(&format!("__tape_ix{}", a.0), Span::mixed_site())
}
