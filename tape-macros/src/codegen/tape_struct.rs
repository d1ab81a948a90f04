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

use super::{forward, idents, name_literal, runtime, value_ref};
use crate::ir::{NodeId, NodeKind, Tape};
use crate::ops::{Config, Output};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// `struct FTape`, its inherent items and its `Tape` impl.
pub fn emit(tape: &Tape) -> TokenStream {
    let (vis, name) = (&tape.vis, &tape.name);
    let (generics, where_clause) = &tape.generics;
    let rt = runtime();
    let strukt = idents::tape_struct(name);
    let values = idents::values_field();
    let elem = syn::Ident::new(tape.elem.name(), Span::call_site());
    let config_fields = config_fields(tape);
    let field_decls = config_fields.iter().map(|(field, ty)| quote!(#field: #ty,));
    let field_inits = config_fields.iter().map(|(field, _)| quote!(#field,));
    let rows = tape.nodes.iter().map(|node| {
        let id = node.id.0;
        let name = match &node.name {
            Some(n) => quote!(::core::option::Option::Some(#n)),
            None => quote!(::core::option::Option::None),
        };
        let op = node.op_name();
        let parents = node.parents().iter().map(|p| p.0);
        let requires_grad = node.requires_grad;
        quote!(#rt::NodeInfo { id: #id, name: #name, op: #op, parents: &[#(#parents),*], requires_grad: #requires_grad })
    });
    let output = tape.output.0;
    let params = tape.params.iter().map(|p| {
        let (pname, ty) = (&p.name, &p.ty);
        quote!(#pname: #ty)
    });
    let forward = tape
        .nodes
        .iter()
        .map(|node| forward::emit_forward(tape, node.id));
    let recorded = tape.nodes.iter().map(|node| {
        let v = value_ref(tape, node.id);
        quote!(#rt::record::<#elem, _>(#v))
    });
    let arms = tape.nodes.iter().filter_map(|node| emit_arm(tape, node.id));
    let (id_arg, acc_arg, acc_ty) = (idents::id_arg(), idents::acc_arg(), idents::acc_type());
    let ct = idents::cotangent();
    let grad_fn = idents::grad_fn(name);
    let doc = format!(
        "The static tape of [`{name}`] and one recorded forward pass: every node's value, and \
         through [`Tape`](::tape::Tape) every node's cotangent (`backward_dense`, \
         `backward_sparse`, …). [`{grad_fn}`] is the fast path for parameter gradients.\n\n{}",
        forward::tape_table(tape)
    );
    let record_doc = format!(
        "Runs `{name}`'s forward pass, keeping every node's value.\n\n# Errors\n\nAs \
         [`{grad_fn}`]: a kernel's shape, axis or domain error, naming the node."
    );
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone)]
        #[allow(dead_code)]
        #vis struct #strukt {
            #values: ::std::vec::Vec<#rt::AnyTensor<#elem>>,
            #(#field_decls)*
        }

        #[allow(dead_code)]
        impl #strukt {
            /// The static tape: one row per node id, parameters first, then one node per
            /// operation in evaluation order.
            pub const NODES: &'static [#rt::NodeInfo] = &[#(#rows),*];

            /// The id of the function's output node.
            pub const OUTPUT: usize = #output;

            #[doc = #record_doc]
            #[allow(unused_variables, clippy::all)]
            #vis fn record #generics (#(#params),*) -> ::core::result::Result<Self, #rt::TapeError>
            #where_clause
            {
                #(#forward)*
                ::core::result::Result::Ok(#strukt {
                    #values: ::std::vec![#(#recorded),*],
                    #(#field_inits)*
                })
            }
        }

        impl #rt::Tape for #strukt {
            type Elem = #elem;

            fn nodes(&self) -> &'static [#rt::NodeInfo] {
                Self::NODES
            }

            fn values(&self) -> &[#rt::AnyTensor<#elem>] {
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

/// One field per constant argument of every op, typed from the op table.
fn config_fields(tape: &Tape) -> Vec<(syn::Ident, TokenStream)> {
    let elem = syn::Ident::new(tape.elem.name(), Span::call_site());
    let mut fields = Vec::new();
    for node in &tape.nodes {
        if let NodeKind::Op { op, .. } = &node.kind {
            for (i, config) in op.configs.iter().enumerate() {
                let ty = match config {
                    Config::I32 => quote!(i32),
                    Config::Elem => quote!(#elem),
                    Config::Axis => quote!(::tape::ndarray::Axis),
                };
                fields.push((idents::config(node.id, i), ty));
            }
        }
    }
    fields
}

/// `K => { op_vjp(g, values…, y, configs…, accs…)?; acc.add(parent, contribution)?; … }`
/// for an op node that requires a gradient.
fn emit_arm(tape: &Tape, id: NodeId) -> Option<TokenStream> {
    let node = tape.node(id);
    let NodeKind::Op { op, args, configs } = &node.kind else {
        return None;
    };
    if !node.requires_grad {
        return None;
    }
    let rt = runtime();
    let values = idents::values_field();
    let ct = idents::cotangent();
    let acc_arg = idents::acc_arg();
    let index = id.0;
    let node_name = name_literal(tape, id);
    let op_name = op.name;
    let (g, y) = match op.output {
        Output::Tensor => (
            quote!(::core::clone::Clone::clone(#ct.as_array())),
            quote!(self.#values[#index].as_array()),
        ),
        Output::Scalar => (
            quote!(#rt::at(#rt::scalar_of(#op_name, #ct), #index, #node_name)?),
            quote!(&#rt::at(#rt::scalar_of(#op_name, &self.#values[#index]), #index, #node_name)?),
        ),
    };
    let operands = args.iter().map(|a| {
        let a = a.0;
        quote!(self.#values[#a].as_array())
    });
    let config_ids = (0..configs.len()).map(|i| {
        let c = idents::config(id, i);
        quote!(self.#c)
    });
    let mut slots = Vec::new();
    let mut accs = Vec::new();
    let mut sends = Vec::new();
    for (position, a) in args.iter().enumerate() {
        if tape.node(*a).requires_grad {
            let d = idents::duplicate(position);
            let parent = a.0;
            slots.push(quote!(let mut #d = ::core::option::Option::None;));
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
    let vjp = syn::Ident::new(&format!("{}_vjp", op.name), Span::call_site());
    let family = syn::Ident::new(op.family, Span::call_site());
    let call = quote_spanned! {node.span=>
        #rt::ops::#family::#vjp(#g, #(#operands,)* #y, #(#config_ids,)* #(#accs),*)
    };
    Some(quote! {
        #index => {
            #(#slots)*
            #rt::at(#call, #index, #node_name)?;
            #(#sends)*
        }
    })
}
