//! Names of generated items and locals.
//!
//! Locals are `__tape_v{id}` (a node's value) and `__tape_g{id}` (its gradient slot), with
//! `Span::mixed_site()` hygiene: they can neither capture nor shadow the user's names.

use crate::ir::NodeId;
use proc_macro2::{Ident, Span};
use quote::format_ident;

/// `__tape_rt`: the runtime's alias inside a generated body (see [`super::runtime`]).
pub fn runtime_alias() -> Ident {
    Ident::new("__tape_rt", Span::mixed_site())
}

/// `__tape_scope`: a body's claim on the thread's error slot (see [`super::enter_scope`]).
pub fn scope() -> Ident {
    Ident::new("__tape_scope", Span::mixed_site())
}

/// The local holding node `id`'s forward value.
pub fn value(id: NodeId) -> Ident {
    Ident::new(&format!("__tape_v{}", id.0), Span::mixed_site())
}

/// The local holding node `id`'s gradient slot.
pub fn grad(id: NodeId) -> Ident {
    Ident::new(&format!("__tape_g{}", id.0), Span::mixed_site())
}

/// The cotangent being propagated inside one node's reverse block.
pub fn cotangent() -> Ident {
    Ident::new("__tape_g", Span::mixed_site())
}

/// `loss` → `loss_grad`, spanned at the user's name so the user can call it.
pub fn grad_fn(name: &Ident) -> Ident {
    format_ident!("{}_grad", name, span = name.span())
}

/// `loss` → `LossGrad`; `two_layer_mlp` → `TwoLayerMlpGrad`.
pub fn grad_struct(name: &Ident) -> Ident {
    format_ident!("{}Grad", upper_camel(&name.to_string()), span = name.span())
}

/// `loss` → `LossTape`.
pub fn tape_struct(name: &Ident) -> Ident {
    format_ident!("{}Tape", upper_camel(&name.to_string()), span = name.span())
}

/// The recorded tape's field holding every node's value.
pub fn values_field() -> Ident {
    Ident::new("__tape_values", Span::mixed_site())
}

/// The recorded tape's field holding every op node's constant arguments.
pub fn configs_field() -> Ident {
    Ident::new("__tape_configs", Span::mixed_site())
}

/// The accumulator type parameter of the generated `Tape::vjp`.
pub fn acc_type() -> Ident {
    Ident::new("__TapeAcc", Span::mixed_site())
}

/// The accumulator argument of the generated `Tape::vjp`.
pub fn acc_arg() -> Ident {
    Ident::new("__tape_acc", Span::mixed_site())
}

/// The node id argument of the generated `Tape::vjp`.
pub fn id_arg() -> Ident {
    Ident::new("__tape_id", Span::mixed_site())
}

fn upper_camel(snake: &str) -> String {
    snake
        .trim_start_matches("r#")
        .split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect::<String>())
                .unwrap_or_default()
        })
        .collect()
}

/// The local holding the pullback of call node `id`.
pub fn pullback(id: NodeId) -> Ident {
    Ident::new(&format!("__tape_p{}", id.0), Span::mixed_site())
}

/// The recorded tape's field holding the callee's tape of call node `id`.
pub fn callee_tape(id: NodeId) -> Ident {
    Ident::new(&format!("__tape_s{}", id.0), Span::mixed_site())
}

/// `loss` → `loss_vjp`: the value and pullback of a differentiable function.
pub fn vjp_fn(name: &Ident) -> Ident {
    format_ident!("{}_vjp", name, span = name.span())
}

/// `nn::layer` → `nn::layer_vjp`, the callee's pullback function.
pub fn callee_vjp_path(path: &syn::Path) -> syn::Path {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = vjp_fn(&last.ident);
    }
    path
}

/// `layer` → `annotate_layer_with_differentiable`: a marker every differentiable function
/// defines. A caller names it first, so that calling a plain function in a differentiable
/// position fails with an error that says the fix.
pub fn marker(name: &Ident) -> Ident {
    format_ident!("annotate_{}_with_differentiable", name, span = name.span())
}

/// `nn::layer` → `nn::annotate_layer_with_differentiable`.
pub fn callee_marker_path(path: &syn::Path) -> syn::Path {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = marker(&last.ident);
    }
    path
}

/// `nn::layer` → `nn::LayerTape`, the callee's recorded tape.
pub fn callee_tape_path(path: &syn::Path) -> syn::Path {
    let mut path = path.clone();
    if let Some(last) = path.segments.last_mut() {
        last.ident = tape_struct(&last.ident);
    }
    path
}

/// The float type parameter of a recorded tape struct of a non-generic function.
pub fn tape_float() -> Ident {
    Ident::new("__TapeF", Span::mixed_site())
}

/// The lifetime of the borrowed inputs a pullback keeps.
pub fn pullback_lifetime() -> syn::Lifetime {
    syn::Lifetime::new("'__tape", Span::mixed_site())
}

/// The local holding the auxiliary outputs.
pub fn aux() -> Ident {
    Ident::new("__tape_aux", Span::mixed_site())
}

/// The local holding the `index`-th constant argument of node `id`.
pub fn config(id: NodeId, index: usize) -> Ident {
    Ident::new(&format!("__tape_c{}_{}", id.0, index), Span::mixed_site())
}

/// A temporary slot for the `position`-th operand when an op uses one value twice (`x * x`).
pub fn duplicate(position: usize) -> Ident {
    Ident::new(&format!("__tape_d{position}"), Span::mixed_site())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_names_are_upper_camel() {
        let name = |s: &str| grad_struct(&Ident::new(s, Span::call_site())).to_string();
        assert_eq!(name("loss"), "LossGrad");
        assert_eq!(name("two_layer_mlp"), "TwoLayerMlpGrad");
        assert_eq!(name("_private_loss"), "PrivateLossGrad");
    }
}
