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
use super::{idents, is_optional, items, name_literal, runtime, value_ref};
use crate::ir::{Elem, NodeId, NodeKind, Tape};
use crate::ops::{Config, Output};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// `struct FTape`, its inherent items and its `Tape` impl.
pub fn emit(tape: &Tape) -> TokenStream {
    let (vis, name) = (&tape.vis, &tape.name);
    let generics = &tape.generics;
    let rt = runtime();
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
    let config_fields = config_fields(tape, &float);
    let field_decls = config_fields.iter().map(|(field, ty)| quote!(#field: #ty,));
    let field_inits = config_fields.iter().map(|(field, _)| quote!(#field,));
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
    // One method per node keeps each function small: type-checking one huge `match` is
    // superlinear in its size.
    let node_vjps: Vec<(syn::Ident, TokenStream)> = tape
        .nodes
        .iter()
        .filter_map(|node| emit_arm(tape, node.id).map(|body| (idents::node_vjp(node.id), body)))
        .collect();
    let arms = tape
        .nodes
        .iter()
        .zip(0..)
        .filter(|(node, _)| node.requires_grad)
        .filter_map(|(node, _)| {
            let index = node.id.0;
            node_vjps
                .iter()
                .find(|(name, _)| *name == idents::node_vjp(node.id))
                .map(|(name, _)| quote!(#index => self.#name(#ct, #acc_arg)?,))
        });
    let methods = node_vjps.iter().map(|(name, body)| {
        quote! {
            #[allow(unused_variables, unused_mut, clippy::all)]
            fn #name<#acc_ty: #rt::Accumulate<#elem>>(
                &self,
                #ct: &#rt::AnyTensor<#elem>,
                #acc_arg: &mut #acc_ty,
            ) -> ::core::result::Result<(), #rt::TapeError> {
                #body
                ::core::result::Result::Ok(())
            }
        }
    });
    let grad_fn = idents::grad_fn(name);
    let doc = format!(
        "The static tape of [`{name}`] and one recorded forward pass: every node's value, and \
         through [`Tape`](::tape::Tape) every node's cotangent (`backward_dense`, \
         `backward_sparse`, …). [`{grad_fn}`] is the fast path for parameter gradients.\n\n{}",
        tape_table(tape)
    );
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
            #(#field_decls)*
            #(#callee_decls)*
        }

        #[allow(dead_code)]
        impl #impl_generics #self_ty {
            /// The static tape: one row per node id, parameters first, then one node per
            /// operation in evaluation order.
            pub const NODES: &'static [#rt::NodeInfo] = &[#(#rows),*];

            /// The id of the function's output node.
            pub const OUTPUT: usize = #output;

            #(#methods)*

            #[doc = #record_doc]
            #[inline]
            #[allow(unused_variables, unused_mut, unused_parens, clippy::all)]
            #vis fn record #record_generics (#(#params),*) -> ::core::result::Result<Self, #rt::TapeError>
            #where_clause
            {
                #items
                #(#forward)*
                ::core::result::Result::Ok(Self {
                    #values: ::std::vec![#(#recorded),*],
                    #(#field_inits)*
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
                    _ => {}
                }
                ::core::result::Result::Ok(())
            }
        }
    }
}

/// One field per constant argument of every op, typed from the op table (optional inside a
/// branch arm).
fn config_fields(tape: &Tape, float: &TokenStream) -> Vec<(syn::Ident, TokenStream)> {
    let mut fields = Vec::new();
    for node in &tape.nodes {
        if let NodeKind::Op { op, .. } = &node.kind {
            for (i, config) in op.configs.iter().enumerate() {
                let ty = match config {
                    Config::I32 => quote!(i32),
                    Config::Elem => quote!(#float),
                    Config::Axis => quote!(::tape::ndarray::Axis),
                    Config::Usize => quote!(usize),
                };
                let ty = if is_optional(tape, node.id) {
                    quote!(::core::option::Option<#ty>)
                } else {
                    ty
                };
                fields.push((idents::config(node.id, i), ty));
            }
        }
    }
    fields
}

/// A recorded node's value: `evaluated(&self.values, id)?`.
fn recorded(id: NodeId, index: usize, node_name: &TokenStream) -> TokenStream {
    let rt = runtime();
    let values = idents::values_field();
    let a = id.0;
    quote!(#rt::at(#rt::evaluated(&self.#values, #a), #index, #node_name)?)
}

/// `K => { … }`: node K's VJP on the recorded values, sending each contribution to the
/// accumulator, for a node that requires a gradient.
fn emit_arm(tape: &Tape, id: NodeId) -> Option<TokenStream> {
    let node = tape.node(id);
    if !node.requires_grad {
        return None;
    }
    let rt = runtime();
    let elem = tape.elem.tokens();
    let ct = idents::cotangent();
    let acc_arg = idents::acc_arg();
    let index = id.0;
    let node_name = name_literal(tape, id);
    let body = match &node.kind {
        NodeKind::Param(_) | NodeKind::Const(_) | NodeKind::Cond(_) => return None,
        NodeKind::Select { cond, then, other } => {
            let c = recorded(*cond, index, &node_name);
            let (t, o) = (then.0, other.0);
            quote!(#rt::at(#rt::select_any_vjp(#ct, #c, #t, #o, #acc_arg), #index, #node_name)?;)
        }
        NodeKind::Call { args, .. } => {
            let s = idents::callee_tape(id);
            let parents = args.iter().map(|a| a.node.0);
            quote!(#rt::at(#rt::call_vjp(self.#s.as_ref(), #ct, &[#(#parents),*], #acc_arg), #index, #node_name)?;)
        }
        NodeKind::Op { op, args, configs } => {
            let op_name = op.name;
            let own = recorded(id, index, &node_name);
            let (g, y) = match op.output {
                Output::Tensor => (
                    quote!(::core::clone::Clone::clone(#ct.as_array())),
                    quote!(#own.as_array()),
                ),
                Output::Scalar => (
                    quote!(#rt::at(#rt::scalar_of(#op_name, #ct), #index, #node_name)?),
                    quote!(&#rt::at(#rt::scalar_of(#op_name, #own), #index, #node_name)?),
                ),
            };
            let operands = args.iter().map(|a| {
                let r = recorded(*a, index, &node_name);
                quote!(#r.as_array())
            });
            let configs = (0..configs.len()).map(|i| {
                let c = idents::config(id, i);
                if is_optional(tape, id) {
                    quote!(*#rt::at(#rt::taken(&self.#c), #index, #node_name)?)
                } else {
                    quote!(self.#c)
                }
            });
            let mut slots = Vec::new();
            let mut accs = Vec::new();
            let mut sends = Vec::new();
            for (position, a) in args.iter().enumerate() {
                if tape.node(*a).requires_grad {
                    let d = idents::duplicate(position);
                    let parent = a.0;
                    slots.push(quote!(let mut #d: ::core::option::Option<::tape::ndarray::ArrayD<#elem>> = ::core::option::Option::None;));
                    accs.push(quote!(#rt::Acc::to(&mut #d)));
                    sends.push(quote! {
                        if let ::core::option::Option::Some(#d) = #d {
                            #rt::at(#acc_arg.add(#parent, #rt::AnyTensor::new(#d)), #index, #node_name)?;
                        }
                    });
                } else {
                    accs.push(quote!(#rt::Acc::skip()));
                }
            }
            let vjp = op.vjp_ident();
            let family = syn::Ident::new(op.family, Span::call_site());
            let call = quote_spanned! {node.span=>
                #rt::ops::#family::#vjp(#g, #(#operands,)* #y, #(#configs,)* #(#accs),*)
            };
            quote! {
                #(#slots)*
                #rt::at(#call, #index, #node_name)?;
                #(#sends)*
            }
        }
    };
    Some(body)
}
