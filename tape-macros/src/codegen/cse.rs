//! Common scalars merged in `_grad`: nodes that compute the same float from the same nodes are
//! one node, so their cotangents add up in one local before a single VJP runs.
//!
//! Input: the unrolled tape of `x[i + 1] - x[i] * x[i]` for `i = 0, 1, …`, where every `x[i]`
//! is its own `index` node and every `i` its own constant.
//!
//! Output: the same tape with references redirected: each constant `0` to the first, then each
//! `x[i]` with equal operand and index code to the first `x[i]` of its step. The later copies
//! are left without readers, so they reach nothing and get no VJP (their forward `let`s are
//! plain loads that the compiler folds). The reverse sweep then has one `index` VJP per element
//! read instead of one per read.
//!
//! Merged: constants and known-scalar op results, outside any branch, whose constant code is a
//! plain expression (literals, names, operators; no calls, methods, macros or blocks, whose
//! results could differ between two evaluations). Arrays are never merged.

use crate::ir::{NodeId, NodeKind, Tape, Verbatim};
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use std::collections::HashMap;

/// `tape` with duplicate scalar nodes merged into their first occurrence.
pub fn merge(tape: &Tape) -> Tape {
    let mut out = tape.clone();
    let mut rep: Vec<NodeId> = (0..tape.nodes.len()).map(NodeId).collect();
    let mut seen: HashMap<String, NodeId> = HashMap::new();
    for node in &mut out.nodes {
        let to = |id: &mut NodeId| *id = rep[id.0];
        let code = |v: &mut Verbatim| v.captures.iter_mut().for_each(|c| c.node = rep[c.node.0]);
        match &mut node.kind {
            NodeKind::Param(_) => {}
            NodeKind::Const(v) | NodeKind::Cond(v) => code(v),
            NodeKind::Select { cond, then, other } => {
                to(cond);
                to(then);
                to(other);
            }
            NodeKind::Call { args, .. } => args.iter_mut().for_each(|a| to(&mut a.node)),
            NodeKind::Op { args, configs, .. } => {
                args.iter_mut().for_each(to);
                configs.iter_mut().for_each(code);
            }
        }
        if !node.guard.is_empty() {
            continue;
        }
        let Some(key) = key(&node.kind, node.scalar) else {
            continue;
        };
        match seen.get(&key) {
            Some(&first) => rep[node.id.0] = first,
            None => {
                seen.insert(key, node.id);
            }
        }
    }
    if let Some(aux) = &mut out.aux {
        for c in &mut aux.code.captures {
            c.node = rep[c.node.0];
        }
    }
    out.output = rep[out.output.0];
    out
}

/// What identifies a mergeable node's value, or `None` if it is not mergeable.
fn key(kind: &NodeKind, scalar: bool) -> Option<String> {
    match kind {
        NodeKind::Const(code) if plain(&code.tokens) => {
            Some(format!("const {}", verbatim_key(code)))
        }
        NodeKind::Op { op, args, configs } if scalar => {
            let mut key = format!("op {} {} {:?}", op.name, op.kernel, args);
            for c in configs {
                if !plain(&c.tokens) {
                    return None;
                }
                key.push_str(&format!(" [{}]", verbatim_key(c)));
            }
            Some(key)
        }
        _ => None,
    }
}

fn verbatim_key(code: &Verbatim) -> String {
    let captures: Vec<String> = code
        .captures
        .iter()
        .map(|c| {
            format!(
                "{}={}{}",
                c.ident,
                c.node.0,
                if c.shape_only { "s" } else { "" }
            )
        })
        .collect();
    format!(
        "{} {} {}",
        code.float_literal,
        code.tokens,
        captures.join(",")
    )
}

/// Whether code is a plain expression: no call, index, method, macro, field access or block.
fn plain(tokens: &TokenStream) -> bool {
    // A group right after an operand is a call or an index: `f(i)`, `(f)(i)`, `v[i]`.
    let mut after_operand = false;
    for tree in tokens.clone() {
        match &tree {
            TokenTree::Group(g)
                if after_operand || g.delimiter() == Delimiter::Brace || !plain(&g.stream()) =>
            {
                return false;
            }
            TokenTree::Punct(p) if matches!(p.as_char(), '.' | '!' | ';' | '=' | '|') => {
                return false;
            }
            _ => {}
        }
        after_operand = !matches!(tree, TokenTree::Punct(_));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::plain;
    use quote::quote;

    #[test]
    fn plain_expressions_only() {
        assert!(plain(&quote!(i + 1)));
        assert!(plain(&quote!((n - 1) as f64 * 2.0)));
        assert!(plain(&quote!(N)));
        assert!(!plain(&quote!(next(i))));
        assert!(!plain(&quote!(i.count())));
        assert!(!plain(&quote!(v[i])));
        assert!(!plain(&quote!(rand!())));
        assert!(!plain(&quote!({ i })));
        assert!(!plain(&quote!((f)(i))));
    }
}
