//! Arrays read element by element, `x[i]`.
//!
//! A reached read outside any branch adds its cotangent into a plain buffer of elements (one
//! local, `__tape_ix{a}`) rather than into `x`'s gradient slot; the buffer joins the slot
//! before `x`'s own block. In `_grad`, where every such read of a vector parameter has an
//! index the macro knows (an unrolled loop's `x[i + 1]`), the vector is viewed once as a
//! fixed-size array and read, and its cotangents collected, with no bounds checks; a vector
//! that does not fit sends `_grad` to its op-by-op fallback.

use super::forward::{config_binds, config_value};
use super::{idents, is_optional, kept, runtime, value_ref};
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
    // Each array, with the largest index read from it (`None` once one is not known).
    let mut largest: Vec<(NodeId, Option<usize>)> = Vec::new();
    for node in &tape.nodes {
        let NodeKind::Op { op, args, .. } = &node.kind else {
            continue;
        };
        let a = args[0];
        if op.name == "index"
            && reached[node.id.0]
            && reached[a.0]
            && node.guard.is_empty()
            && !is_optional(tape, a)
            && !tape.node(a).scalar
        {
            let k = known_read(tape, node.id).map(|(_, k)| k);
            match largest.iter_mut().find(|(b, _)| *b == a) {
                Some((_, l)) => *l = l.zip(k).map(|(l, k)| l.max(k)),
                None => largest.push((a, k)),
            }
        }
    }
    let is_vector_ref = |a: NodeId| matches!(tape.node(a).kind, NodeKind::Param(i) if tape.params[i].kind == ParamKind::ArrayRef);
    Indexed {
        arrays: largest.iter().map(|(a, _)| *a).collect(),
        fixed: largest
            .into_iter()
            .filter_map(|(a, l)| Some((a, l? + 1)))
            .filter(|&(a, n)| fixed && n <= FIXED_MAX && is_vector_ref(a))
            .collect(),
    }
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
/// op-by-op `fallback` (an expression that returns) where it is not 1-d, contiguous and `N`
/// long.
pub fn fixed_view(tape: &Tape, a: NodeId, n: usize, fallback: &TokenStream) -> TokenStream {
    let rt = runtime();
    let elem = tape.elem.tokens();
    let (xa, like) = (fixed_array(a), value_ref(tape, a));
    quote! {
        let #xa: &[#elem; #n] = match #rt::fuse::fixed(#like) {
            ::core::option::Option::Some(xa) => xa,
            ::core::option::Option::None => #fallback,
        };
    }
}

/// `let __tape_vK = __tape_xa{a}[k];`: read `id` from its fixed-size array (its index's
/// local is still bound, as the checked read binds it).
pub fn emit_fixed_read(tape: &Tape, id: NodeId, a: NodeId, k: usize) -> TokenStream {
    let (v, xa) = (idents::value(id), fixed_array(a));
    let binds = config_binds(tape, id);
    quote! {
        #(#binds)*
        let #v = #xa[#k];
    }
}

/// The VJP of read `id` of an array with a buffer: its cotangent `ct` added at its index,
/// unchecked where the read is from a fixed-size array.
pub fn emit_add(tape: &Tape, id: NodeId, indexed: &Indexed, ct: &syn::Ident) -> TokenStream {
    let rt = runtime();
    if let Some((a, k)) = indexed.fixed_read(tape, id) {
        let ix = index_total(a);
        return quote!(#ix[#k] = #ix[#k] + #ct;);
    }
    let NodeKind::Op { args, .. } = &tape.node(id).kind else {
        return TokenStream::new();
    };
    let (ix, i) = (index_total(args[0]), config_value(tape, id, 0));
    let add = kept(
        tape,
        id,
        quote!(#rt::ops::reduce::index_add(&mut #ix, #i, #ct)),
    );
    quote!(#add;)
}

/// The buffer of `a`'s `x[i]` contributions joining `a`'s gradient slot, before `a`'s own
/// block reads it.
pub fn emit_join(tape: &Tape, a: NodeId, indexed: &Indexed) -> TokenStream {
    let rt = runtime();
    let (ix, slot, like) = (index_total(a), idents::grad(a), value_ref(tape, a));
    let elements = match indexed.fixed_len(a) {
        Some(_) => quote!(#rt::fuse::from_fixed(&#ix, #rt::fuse::elements(#like))),
        None => quote!(#ix),
    };
    let shaped = kept(
        tape,
        a,
        quote!(#rt::fuse::output(#elements, #rt::Tensor::shape_of(#like))),
    );
    let put = kept(tape, a, quote!(#rt::acc_to(&mut #slot).put(#ix)));
    quote! {
        let #ix = #shaped;
        #put;
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
fn index_total(a: NodeId) -> syn::Ident {
    syn::Ident::new(&format!("__tape_ix{}", a.0), Span::mixed_site())
}
