//! Checks over the signature before lowering: what `_grad` can be generated for.
//!
//! Each check pushes its errors to the [`Ctxt`] and carries on, so one build lists every
//! problem of the signature.

use crate::ctxt::Ctxt;
use crate::ir::{Elem, ParamKind};
use proc_macro2::Ident;
use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{GenericArgument, GenericParam, PathArguments, ReturnType, Signature, Type};

/// Rejects what a differentiable function cannot be: `async`, `const`, `unsafe`, `extern`,
/// variadic, generic over consts or over more than one type, a method with `self`. Returns the
/// float type parameter of a generic function (`fn f<F: Float>`).
pub fn check_signature(cx: &mut Ctxt, sig: &Signature) -> Option<Ident> {
    if let Some(t) = &sig.constness {
        cx.push(t.span(), "a differentiable function cannot be `const`");
    }
    if let Some(t) = &sig.asyncness {
        cx.push(t.span(), "a differentiable function cannot be `async`");
    }
    if let syn::Safety::Unsafe(t) = &sig.safety {
        cx.push(t.span(), "a differentiable function cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        cx.push_spanned(abi, "a differentiable function cannot have an `extern` ABI");
    }
    if let Some(v) = &sig.variadic {
        cx.push_spanned(v, "a differentiable function cannot be variadic");
    }
    let mut float = None;
    for param in &sig.generics.params {
        match param {
            GenericParam::Lifetime(_) => {}
            GenericParam::Type(t) if float.is_none() => float = Some(t.ident.clone()),
            GenericParam::Type(t) => cx.push(
                t.ident.span(),
                "a differentiable function may be generic over one float type \
                 (`fn f<F: tape::Float>`), not more",
            ),
            GenericParam::Const(c) => {
                cx.push(c.ident.span(), "const generic parameters are not supported")
            }
        }
    }
    float
}

/// What a function returns.
#[derive(Debug, Clone)]
pub enum Ret {
    /// A float scalar: `_grad` differentiates it.
    Scalar,
    /// An array: the function can be called from other differentiable functions, and its tape
    /// seeded, but it has no `_grad`.
    Array,
    /// `(F, Aux…)`: the first element is differentiated, the rest passed through.
    Tuple {
        /// The type of the rest: `A` for `(F, A)`, `(A, B)` for `(F, A, B)`.
        aux: proc_macro2::TokenStream,
    },
}

/// The float type and the kind of the return value.
pub fn check_return(cx: &mut Ctxt, sig: &Signature, float: Option<&Ident>) -> Option<(Elem, Ret)> {
    let ty = match &sig.output {
        ReturnType::Default => {
            cx.push(
                sig.paren_token.span.close(),
                "a differentiable function returns the value it differentiates: add `-> f64` \
                 (or `-> f32`)",
            );
            return None;
        }
        ReturnType::Type(_, ty) => ty,
    };
    if let Some(elem) = float_elem(ty, float) {
        return Some((elem, Ret::Scalar));
    }
    if let Some(elem) = array_elem(ty, float) {
        return Some((elem, Ret::Array));
    }
    if let Type::Tuple(t) = &**ty {
        let mut elems = t.elems.iter();
        if let Some(elem) = elems.next().and_then(|first| float_elem(first, float)) {
            let rest: Vec<&Type> = elems.collect();
            let aux = match rest.as_slice() {
                [] => None,
                [one] => Some(one.to_token_stream()),
                many => Some(quote::quote!((#(#many),*))),
            };
            if let Some(aux) = aux {
                return Some((elem, Ret::Tuple { aux }));
            }
        }
    }
    cx.push_spanned(
        ty,
        format!(
            "unsupported return type `{}`: a differentiable function returns a float (`f64`, \
             `f32`), an array of them, or a tuple `(loss, aux…)` whose first element is the float \
             that `_grad` differentiates",
            pretty(ty)
        ),
    );
    None
}

/// Tokens as a person writes them: `Vec<f64>`, not `Vec < f64 >`.
pub fn pretty(tokens: &impl ToTokens) -> String {
    let mut text = tokens.to_token_stream().to_string();
    for (from, to) in [
        (" < ", "<"),
        ("< ", "<"),
        (" <", "<"),
        (" >", ">"),
        ("& ", "&"),
        (" ,", ","),
        (" :: ", "::"),
    ] {
        text = text.replace(from, to);
    }
    text
}

/// `f32`, `f64` or the function's float type parameter, if `ty` names one.
pub fn float_elem(ty: &Type, float: Option<&Ident>) -> Option<Elem> {
    match ty {
        Type::Paren(p) => float_elem(&p.elem, float),
        Type::Group(g) => float_elem(&g.elem, float),
        Type::Path(p) if p.qself.is_none() => {
            let ident = p.path.get_ident()?;
            match ident.to_string().as_str() {
                "f32" => Some(Elem::F32),
                "f64" => Some(Elem::F64),
                _ if Some(ident) == float => Some(Elem::Generic(ident.clone())),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_int(ty: &Type) -> bool {
    const INTS: &[&str] = &[
        "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize",
    ];
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .get_ident()
            .is_some_and(|i| INTS.contains(&i.to_string().as_str())),
        _ => false,
    }
}

/// The element type of an ndarray type: `Array2<f64>`, `ArrayD<f32>`, `Array<f64, Ix2>`,
/// also through a path (`ndarray::Array1<f64>`).
fn array_elem(ty: &Type, float: Option<&Ident>) -> Option<Elem> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    let name = last.ident.to_string();
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| {
            if let GenericArgument::Type(t) = a {
                Some(t)
            } else {
                None
            }
        })
        .collect();
    let fixed = matches!(
        name.as_str(),
        "Array0" | "Array1" | "Array2" | "Array3" | "Array4" | "Array5" | "Array6" | "ArrayD"
    );
    match (fixed, name.as_str(), types.as_slice()) {
        (true, _, [elem]) => float_elem(elem, float),
        (false, "Array", [elem, _dim]) => float_elem(elem, float),
        _ => None,
    }
}

/// A parameter's kind, element type and gradient type, or an error message.
pub fn classify_param(
    ty: &Type,
    float: Option<&Ident>,
) -> Result<(ParamKind, Option<Elem>, Type), String> {
    const EXPECTED: &str = "expected `f64` or `f32` (by value), an ndarray array of them \
                            (`&Array2<f64>`, `Array1<f32>`, `&ArrayD<f64>`, …), or an integer";
    match ty {
        Type::Paren(p) => classify_param(&p.elem, float),
        Type::Group(g) => classify_param(&g.elem, float),
        Type::Reference(r) => {
            if r.mutability.is_some() {
                return Err(
                    "a differentiable function cannot mutate its inputs: take `&` instead \
                            of `&mut`"
                        .into(),
                );
            }
            if let Some(elem) = array_elem(&r.elem, float) {
                Ok((ParamKind::ArrayRef, Some(elem), (*r.elem).clone()))
            } else if float_elem(&r.elem, float).is_some() {
                Err("take scalars by value: `x: f64`".into())
            } else {
                Err(format!(
                    "unsupported parameter type `{}`: {EXPECTED}",
                    pretty(ty)
                ))
            }
        }
        _ => {
            if let Some(elem) = float_elem(ty, float) {
                Ok((ParamKind::Scalar, Some(elem), ty.clone()))
            } else if let Some(elem) = array_elem(ty, float) {
                Ok((ParamKind::ArrayOwned, Some(elem), ty.clone()))
            } else if is_int(ty) {
                Ok((ParamKind::Int, None, ty.clone()))
            } else {
                Err(format!(
                    "unsupported parameter type `{}`: {EXPECTED}",
                    pretty(ty)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn types_print_as_written() {
        let ty: Type = parse_quote!(&Vec<Array2<f64>>);
        assert_eq!(pretty(&ty), "&Vec<Array2<f64>>");
    }

    #[test]
    fn parameter_types() {
        let kind = |ty: Type| classify_param(&ty, None).map(|(k, e, _)| (k, e));
        assert_eq!(
            kind(parse_quote!(f64)),
            Ok((ParamKind::Scalar, Some(Elem::F64)))
        );
        assert_eq!(
            kind(parse_quote!(&Array2<f32>)),
            Ok((ParamKind::ArrayRef, Some(Elem::F32)))
        );
        assert_eq!(
            kind(parse_quote!(ndarray::ArrayD<f64>)),
            Ok((ParamKind::ArrayOwned, Some(Elem::F64)))
        );
        assert_eq!(
            kind(parse_quote!(&Array<f64, Ix3>)),
            Ok((ParamKind::ArrayRef, Some(Elem::F64)))
        );
        assert_eq!(kind(parse_quote!(usize)), Ok((ParamKind::Int, None)));
        assert!(kind(parse_quote!(&mut Array1<f64>)).is_err());
        assert!(kind(parse_quote!(&f64)).is_err());
        assert!(kind(parse_quote!(Vec<f64>)).is_err());
        assert!(kind(parse_quote!(&Array1<i32>)).is_err());
    }
}
