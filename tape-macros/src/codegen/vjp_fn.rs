//! `fn f_vjp(params) -> Result<(R, pullback), TapeError>`: the value and a pullback that maps
//! an output cotangent to the parameters' gradients (JAX's `vjp`). This is what a
//! differentiable function that calls `f` runs for that call.
//!
//! Input: `#[differentiable] fn layer(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> Array2<f64>`.
//!
//! Output:
//!
//! ```text
//! pub fn layer_vjp<'t>(w: &'t Array2<f64>, x: &'t Array2<f64>) -> Result<(
//!     Array2<f64>,
//!     Box<dyn FnOnce(Array2<f64>, Acc<'_, Array2<f64>>, Acc<'_, Array2<f64>>) -> Result<(), TapeError> + 't>,
//! ), TapeError> {
//!     /* the forward pass */
//!     Ok((value, Box::new(move |g, d_w, d_x| {
//!         /* the reverse sweep seeded with g */
//!         if let Some(c) = __tape_g0 { d_w.put(c)?; }   // x needs no gradient: d_x is dropped
//!         Ok(())
//!     })))
//! }
//! ```
//!
//! The pullback owns the forward values it needs and borrows the inputs. It is returned boxed:
//! one allocation per call of `f` from another differentiable function. An unboxed
//! `impl FnOnce` doubled the time rustc takes to check a long function (13 s against 7 s for
//! 1,000 nodes), and every differentiable function has a `_vjp`, called or not.
//!
//! A function of more than [`RECORDED_ABOVE`] nodes gets a `_vjp` that records its tape
//! (`FTape::record`) and whose pullback runs the recorded tape's VJPs, one runtime function
//! for every node, instead of a generated block per node: the straight-line pullback of a long
//! function was half of what rustc spent checking it, and long functions are rarely called
//! from other differentiable functions, whose speed is what `_vjp` is for. Same values, same
//! gradients, same errors; each value is copied once into the recording.

use super::forward::{Purpose, emit_forward};
use super::reverse::emit_reverse;
use super::{
    enter_scope, idents, items, return_kept, runtime, runtime_path, use_runtime, value_ref,
};
use crate::ir::Tape;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::visit_mut::VisitMut;

/// Gives every elided reference lifetime the pullback's lifetime.
struct NameLifetimes(syn::Lifetime);

impl VisitMut for NameLifetimes {
    fn visit_type_reference_mut(&mut self, r: &mut syn::TypeReference) {
        if r.lifetime.is_none() {
            r.lifetime = Some(self.0.clone());
        }
        syn::visit_mut::visit_type_reference_mut(self, r);
    }
}

/// Above this many nodes, `_vjp` runs on the recorded tape.
pub const RECORDED_ABOVE: usize = 256;

/// `fn f_vjp`, for every function without auxiliary outputs.
pub fn emit(tape: &Tape) -> TokenStream {
    if tape.aux.is_some() {
        return TokenStream::new();
    }
    let (vis, name, ret) = (&tape.vis, &tape.name, &tape.ret);
    let rt = runtime_path();
    let use_runtime = use_runtime();
    let vjp_fn = idents::vjp_fn(name);
    let lt = idents::pullback_lifetime();
    let generic_params = &tape.generics.params;
    let outlives = tape.generics.lifetimes().map(|l| {
        let l = &l.lifetime;
        quote!(#l: #lt,)
    });
    let predicates = tape.generics.where_clause.as_ref().map(|w| {
        let p = &w.predicates;
        quote!(#p,)
    });
    let params = tape.params.iter().map(|p| {
        let pname = &p.name;
        let ty = match syn::parse2::<syn::Type>(p.ty.clone()) {
            Ok(mut ty) => {
                NameLifetimes(lt.clone()).visit_type_mut(&mut ty);
                ty.into_token_stream()
            }
            Err(_) => p.ty.clone(),
        };
        quote!(#pname: #ty)
    });
    let acc_args: Vec<syn::Ident> = (0..tape.params.len())
        .map(|i| syn::Ident::new(&format!("__tape_d{i}_arg"), Span::mixed_site()))
        .collect();
    let acc_types: Vec<TokenStream> = tape
        .params
        .iter()
        .map(|p| {
            let owned = &p.owned_ty;
            quote!(#rt::Acc<'_, #owned>)
        })
        .collect();
    let body = if tape.nodes.len() > RECORDED_ABOVE {
        emit_recorded_body(tape, &acc_args, &acc_types)
    } else {
        emit_body(tape, &acc_args, &acc_types)
    };
    let recorded = if tape.nodes.len() > RECORDED_ABOVE {
        format!(
            "\n\n`{name}` has {} nodes, more than {RECORDED_ABOVE}: this records its tape \
             ([`{}::record`]) and the pullback runs the recorded tape's VJPs.",
            tape.nodes.len(),
            idents::tape_struct(name),
        )
    } else {
        String::new()
    };
    let doc = format!(
        "The value of [`{name}`] and its pullback: given the cotangent of the value, the pullback \
         adds each parameter's gradient to that parameter's [`Acc`](::tape::Acc). \
         JAX's `jax.vjp`. A differentiable function that calls `{name}` runs this for the call.\
         {recorded}\n\n\
         # Errors\n\nAs `{name}`'s forward pass, and the pullback as its reverse pass."
    );
    quote! {
        #[doc = #doc]
        // `inline` also means: compiled only where it is used, so a function nobody calls
        // from another differentiable function costs no code generation.
        #[inline]
        #[allow(dead_code, unused_variables, unused_mut, unused_parens, clippy::all)]
        #vis fn #vjp_fn<#lt, #generic_params>(#(#params),*) -> ::core::result::Result<
            (#ret, ::std::boxed::Box<dyn ::core::ops::FnOnce(#ret, #(#acc_types),*) -> ::core::result::Result<(), #rt::TapeError> + #lt>),
            #rt::TapeError,
        >
        where
            #(#outlives)*
            #predicates
        {
            #use_runtime
            #body
        }
    }
}

/// The body of a `_vjp` with its own forward pass and a generated pullback.
fn emit_body(tape: &Tape, acc_args: &[syn::Ident], acc_types: &[TokenStream]) -> TokenStream {
    let ret = &tape.ret;
    let ct = syn::Ident::new("__tape_seed", Span::mixed_site());
    let items = items(tape);
    let forward = tape
        .nodes
        .iter()
        .map(|node| emit_forward(tape, node.id, Purpose::Vjp));
    let reverse = emit_reverse(
        tape,
        quote!(#ct),
        true,
        &[],
        &Default::default(),
        &Default::default(),
    );
    let out = value_ref(tape, tape.output);
    let value = syn::Ident::new("__tape_value", Span::mixed_site());
    let puts = reached_params(tape, acc_args).map(|(p, acc)| {
        let g = idents::grad(p.node);
        quote! {
            if let ::core::option::Option::Some(#g) = #g {
                #acc.put(#g)?;
            }
        }
    });
    // The forward pass and the pullback each keep their first error (see `keep`).
    let (declare, check) = (enter_scope(), return_kept());
    quote! {
        #items
        #declare
        #(#forward)*
        #check
        let #value = ::core::clone::Clone::clone(#out);
        ::core::result::Result::Ok((#value, ::std::boxed::Box::new(move |#ct: #ret, #(#acc_args: #acc_types),*| {
            #declare
            #reverse
            #check
            #(#puts)*
            ::core::result::Result::Ok(())
        })))
    }
}

/// The body of a long function's `_vjp`: record the tape, read the value off it, and sweep it
/// in the pullback.
fn emit_recorded_body(
    tape: &Tape,
    acc_args: &[syn::Ident],
    acc_types: &[TokenStream],
) -> TokenStream {
    let (ret, rt) = (&tape.ret, runtime());
    let elem = tape.elem.tokens();
    let strukt = idents::tape_struct(&tape.name);
    let names = tape.params.iter().map(|p| &p.name);
    let (recorded, ct, grads) = (
        syn::Ident::new("__tape_recorded", Span::mixed_site()),
        syn::Ident::new("__tape_seed", Span::mixed_site()),
        syn::Ident::new("__tape_grads", Span::mixed_site()),
    );
    let output = tape.output.0;
    let puts = reached_params(tape, acc_args).map(|(p, acc)| {
        let id = p.node.0;
        quote!(#rt::put_recorded(#strukt::<#elem>::NODES, &mut #grads, #id, #acc)?;)
    });
    quote! {
        let #recorded = #strukt::<#elem>::record(#(#names),*)?;
        let __tape_value: #ret = #rt::typed(
            #strukt::<#elem>::NODES,
            #output,
            #rt::Tape::value(&#recorded, #output)?,
        )?;
        ::core::result::Result::Ok((__tape_value, ::std::boxed::Box::new(move |#ct: #ret, #(#acc_args: #acc_types),*| {
            let mut #grads = #rt::Tape::backward_dense(&#recorded, #output, #rt::Record::record(&#ct))?;
            #(#puts)*
            ::core::result::Result::Ok(())
        })))
    }
}

/// The parameters whose gradients the pullback hands over (those the output reaches), each
/// with its accumulator argument.
fn reached_params<'a>(
    tape: &'a Tape,
    acc_args: &'a [syn::Ident],
) -> impl Iterator<Item = (&'a crate::ir::Param, &'a syn::Ident)> {
    let reached = tape.reached();
    tape.params
        .iter()
        .zip(acc_args)
        .filter(move |(p, _)| reached[p.node.0])
}
