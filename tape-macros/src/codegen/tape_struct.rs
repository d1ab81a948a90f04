//! The recorded tape: `struct FTape`, its `NODES`, `record`, and `impl tape::Tape`.
//!
//! Input: the tape of `fn loss(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> f64 { let z = x.dot(w); z.sum() }`.
//!
//! Output:
//!
//! ```text
//! pub struct LossTape { __tape_values: Vec<AnyTensor<f64>> /* , one field per constant argument */ }
//!
//! impl LossTape {
//!     pub const NODES: &'static [NodeInfo] = &[
//!         NodeInfo { id: 0, name: Some("w"), op: "input", parents: &[], requires_grad: true },
//!         NodeInfo { id: 1, name: Some("x"), op: "input", parents: &[], requires_grad: false },
//!         NodeInfo { id: 2, name: Some("z"), op: "dot", parents: &[1, 0], requires_grad: true },
//!         NodeInfo { id: 3, name: None, op: "sum", parents: &[2], requires_grad: true },
//!     ];
//!     pub const OUTPUT: usize = 3;
//!     pub fn record(w: &Array2<f64>, x: &Array2<f64>) -> Result<LossTape, TapeError> {
//!         /* the forward pass of `loss_grad` */
//!         Ok(LossTape { __tape_values: vec![record(__tape_v0), record(__tape_v1), …] })
//!     }
//! }
//!
//! impl Tape for LossTape {
//!     type Elem = f64;
//!     fn vjp<A: Accumulate<f64>>(&self, id: usize, g: &AnyTensor<f64>, acc: &mut A) -> Result<(), TapeError> {
//!         match id {
//!             3 => { /* sum_vjp on the recorded values; acc.add(2, contribution) */ }
//!             2 => { /* dot_vjp; acc.add(0, contribution) (x needs no gradient) */ }
//!             _ => {}
//!         }
//!         Ok(())
//!     }
//!     /* nodes(), values(), output_id() */
//! }
//! ```
//!
//! The recorded values are shape-erased (`ArrayD` inside `AnyTensor`); each block calls the
//! same kernels as `loss_grad`, instantiated for `ArrayD`.

use super::forward::{Purpose, emit_forward, tape_table};
use super::{
    enter_scope, idents, is_optional, items, name_literal, return_kept, runtime, runtime_path,
    use_runtime, value_ref,
};
use crate::ir::{Elem, NodeId, NodeKind, Tape};
use crate::ops::Config;
use proc_macro2::TokenStream;
use quote::quote;

/// `struct FTape`, its inherent items and its `Tape` impl.
pub fn emit(tape: &Tape) -> TokenStream {
    let (vis, name) = (&tape.vis, &tape.name);
    let generics = &tape.generics;
    let (rt, use_runtime) = (runtime_path(), use_runtime());
    let strukt = idents::tape_struct(name);
    let values = idents::values_field();
    let elem = tape.elem.tokens();
    // Every tape struct takes its float type as a parameter, so a caller can name a callee's
    // tape the same way whether the callee is generic or not: `LayerTape<f64>`.
    let (float, decl, impl_generics, self_ty) = match &tape.elem {
        Elem::Generic(f) => (
            quote!(#f),
            quote!(<#f: ::tape::Float>),
            quote!(<#f: ::tape::Float>),
            quote!(#strukt<#f>),
        ),
        _ => {
            let f = idents::tape_float();
            (
                quote!(#f),
                quote!(<#f: ::tape::Float = #elem>),
                TokenStream::new(),
                quote!(#strukt<#elem>),
            )
        }
    };
    let configs_field = idents::configs_field();
    let configs = recorded_configs(tape);
    let callee_fields: Vec<(syn::Ident, TokenStream)> = tape
        .nodes
        .iter()
        .filter_map(|node| match &node.kind {
            NodeKind::Call { path, .. } => {
                let callee = idents::callee_tape_path(path);
                Some((
                    idents::callee_tape(node.id),
                    quote!(::core::option::Option<#callee<#float>>),
                ))
            }
            _ => None,
        })
        .collect();
    let callee_decls = callee_fields.iter().map(|(field, ty)| quote!(#field: #ty,));
    let callee_inits = callee_fields.iter().map(|(field, _)| quote!(#field,));
    let rows = tape.nodes.iter().map(|node| {
        let id = node.id.0;
        let name = match &node.name {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let op = node.op_name();
        let parents = node.parents().into_iter().map(|p| p.0);
        let requires_grad = node.requires_grad;
        quote!(#rt::NodeInfo { id: #id, name: #name, op: #op, parents: &[#(#parents),*], requires_grad: #requires_grad })
    });
    let output = tape.output.0;
    let params = super::params(tape);
    let items = items(tape);
    let forward = tape
        .nodes
        .iter()
        .map(|node| emit_forward(tape, node.id, Purpose::Record));
    let recorded = tape.nodes.iter().map(|node| {
        if is_optional(tape, node.id) {
            let v = idents::value(node.id);
            quote!(#rt::record_opt::<#elem, _>(&#v))
        } else {
            let v = value_ref(tape, node.id);
            quote!(#rt::record::<#elem, _>(#v))
        }
    });
    let (id_arg, acc_arg, acc_ty) = (idents::id_arg(), idents::acc_arg(), idents::acc_type());
    let ct = idents::cotangent();
    // Op nodes go through `dynamic::op_vjp`, one runtime function for every recorded tape:
    // only selections and calls of other differentiable functions get code of their own.
    let arms = tape.nodes.iter().filter_map(|node| {
        let index = node.id.0;
        emit_arm(tape, node.id).map(|body| quote!(#index => { #body }))
    });
    let grad_fn = idents::grad_fn(name);
    let doc = format!(
        "The static tape of [`{name}`] and one recorded forward pass: every node's value, and \
         through [`Tape`](::tape::Tape) every node's cotangent (`backward_dense`, \
         `backward_sparse`, …). [`{grad_fn}`] is the fast path for parameter gradients.\n\n{}",
        tape_table(tape)
    );
    let (enter_scope, return_kept) = (enter_scope(), return_kept());
    let record_doc = format!(
        "Runs `{name}`'s forward pass, keeping every node's value.\n\n# Errors\n\nAs \
         `{name}`'s forward pass: a kernel's shape, axis or domain error, naming the node."
    );
    let where_clause = &generics.where_clause;
    // `record` takes the function's lifetimes; a generic float type is the impl's.
    let lifetimes: Vec<_> = generics.lifetimes().collect();
    let record_generics = if lifetimes.is_empty() {
        TokenStream::new()
    } else {
        quote!(<#(#lifetimes),*>)
    };
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone)]
        #[allow(dead_code)]
        #vis struct #strukt #decl {
            #values: ::std::vec::Vec<::core::option::Option<#rt::AnyTensor<#float>>>,
            #configs_field: ::std::vec::Vec<::std::vec::Vec<#rt::dynamic::Config<#float>>>,
            #(#callee_decls)*
        }

        #[allow(dead_code)]
        impl #impl_generics #self_ty {
            /// The static tape: one row per node id, parameters first, then one node per
            /// operation in evaluation order.
            pub const NODES: &'static [#rt::NodeInfo] = &[#(#rows),*];

            /// The id of the function's output node.
            pub const OUTPUT: usize = #output;

            #[doc = #record_doc]
            #[inline]
            #[allow(unused_variables, unused_mut, unused_parens, clippy::all)]
            #vis fn record #record_generics (#(#params),*) -> ::core::result::Result<Self, #rt::TapeError>
            #where_clause
            {
                #use_runtime
                #items
                #enter_scope
                #(#forward)*
                #return_kept
                ::core::result::Result::Ok(Self {
                    #values: ::std::vec![#(#recorded),*],
                    #configs_field: #configs,
                    #(#callee_inits)*
                })
            }
        }

        impl #impl_generics #rt::Tape for #self_ty {
            type Elem = #elem;

            fn nodes(&self) -> &'static [#rt::NodeInfo] {
                Self::NODES
            }

            fn values(&self) -> &[::core::option::Option<#rt::AnyTensor<#elem>>] {
                &self.#values
            }

            fn output_id(&self) -> usize {
                Self::OUTPUT
            }

            #[allow(unused_variables, unused_mut, clippy::all)]
            fn vjp<#acc_ty: #rt::Accumulate<#elem>>(
                &self,
                #id_arg: usize,
                #ct: &#rt::AnyTensor<#elem>,
                #acc_arg: &mut #acc_ty,
            ) -> ::core::result::Result<(), #rt::TapeError> {
                match #id_arg {
                    #(#arms)*
                    _ => #rt::dynamic::op_vjp(
                        Self::NODES, &self.#values, &self.#configs_field, #id_arg, #ct, #acc_arg,
                    )?,
                }
                ::core::result::Result::Ok(())
            }
        }
    }
}

/// The constant arguments of every op node, as `record` keeps them for `dynamic::op_vjp`:
/// `dense_configs(len, vec![(id, vec![Config::Usize(__tape_c3_0)]), …])`; none for a node
/// whose branch arm did not run.
fn recorded_configs(tape: &Tape) -> TokenStream {
    let rt = runtime();
    let entries = tape.nodes.iter().filter_map(|node| {
        let NodeKind::Op { op, .. } = &node.kind else {
            return None;
        };
        if op.configs.is_empty() {
            return None;
        }
        let id = node.id.0;
        let locals: Vec<_> = (0..op.configs.len())
            .map(|i| idents::config(node.id, i))
            .collect();
        let wrap = |i: usize, value: TokenStream| match op.configs[i] {
            Config::I32 => quote!(#rt::dynamic::Config::I32(#value)),
            Config::Elem => quote!(#rt::dynamic::Config::Elem(#value)),
            Config::Axis => quote!(#rt::dynamic::Config::Axis(#value)),
            Config::Usize => quote!(#rt::dynamic::Config::Usize(#value)),
        };
        let values = locals.iter().enumerate().map(|(i, c)| wrap(i, quote!(#c)));
        if is_optional(tape, node.id) {
            let somes = locals
                .iter()
                .map(|c| quote!(::core::option::Option::Some(#c)));
            Some(quote! {
                (#id, match (#(#locals,)*) {
                    (#(#somes,)*) => ::std::vec![#(#values),*],
                    _ => ::std::vec::Vec::new(),
                })
            })
        } else {
            Some(quote!((#id, ::std::vec![#(#values),*])))
        }
    });
    let len = tape.nodes.len();
    quote!(#rt::dynamic::dense_configs(#len, ::std::vec![#(#entries),*]))
}

/// A recorded node's value: `evaluated(&self.values, id)?`.
fn recorded(id: NodeId, index: usize, node_name: &TokenStream) -> TokenStream {
    let rt = runtime_path();
    let values = idents::values_field();
    let a = id.0;
    quote!(#rt::at!(#rt::evaluated(&self.#values, #a), #index, #node_name))
}

/// `K => { … }`: node K's VJP on the recorded values, sending each contribution to the
/// accumulator, for a selection or a call that requires a gradient.
fn emit_arm(tape: &Tape, id: NodeId) -> Option<TokenStream> {
    let node = tape.node(id);
    if !node.requires_grad {
        return None;
    }
    let rt = runtime_path();
    let ct = idents::cotangent();
    let acc_arg = idents::acc_arg();
    let index = id.0;
    let node_name = name_literal(tape, id);
    let body = match &node.kind {
        NodeKind::Param(_) | NodeKind::Const(_) | NodeKind::Cond(_) => return None,
        NodeKind::Select { cond, then, other } => {
            let c = recorded(*cond, index, &node_name);
            let (t, o) = (then.0, other.0);
            quote!(#rt::at!(#rt::select_any_vjp(#ct, #c, #t, #o, #acc_arg), #index, #node_name);)
        }
        NodeKind::Call { args, .. } => {
            let s = idents::callee_tape(id);
            let parents = args.iter().map(|a| a.node.0);
            quote!(#rt::at!(#rt::call_vjp(self.#s.as_ref(), #ct, &[#(#parents),*], #acc_arg), #index, #node_name);)
        }
        // Ops run through `dynamic::op_vjp`.
        NodeKind::Op { .. } => return None,
    };
    Some(body)
}
