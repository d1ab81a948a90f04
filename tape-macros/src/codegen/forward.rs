//! The forward pass, shared by `f_grad` and `FTape::record`: one `let` per node.
//!
//! Input: a node of the tape, e.g. node 4 = `dot(x, w)` named `z`.
//! Output: `let __tape_v4 = at(ops::linalg::dot(__tape_v2, __tape_v0), 4, Some("z"))?;`,
//! the kernel call spanned at the user's expression so that type errors point there.

use super::{idents, name_literal, runtime, value_ref, verbatim};
use crate::ir::{NodeId, NodeKind, ParamKind, Tape};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// `let __tape_vK = …;` for one node.
pub fn emit_forward(tape: &Tape, id: NodeId) -> TokenStream {
    let rt = runtime();
    let node = tape.node(id);
    let v = idents::value(id);
    match &node.kind {
        NodeKind::Param(i) => {
            let p = &tape.params[*i];
            let pname = &p.name;
            match p.kind {
                ParamKind::ArrayOwned => quote!(let #v = &#pname;),
                _ => quote!(let #v = #pname;),
            }
        }
        NodeKind::Const(code) => {
            let value = verbatim(code);
            if code.float_literal {
                let elem = syn::Ident::new(tape.elem.name(), Span::call_site());
                quote!(let #v: #elem = #value;)
            } else {
                quote!(let #v = #value;)
            }
        }
        NodeKind::Op { op, args, configs } => {
            let kernel = syn::Ident::new(op.name, Span::call_site());
            let family = syn::Ident::new(op.family, Span::call_site());
            let operands = args.iter().map(|a| value_ref(tape, *a));
            let config_binds = configs.iter().enumerate().map(|(i, c)| {
                let cid = idents::config(id, i);
                let value = verbatim(c);
                quote!(let #cid = #value;)
            });
            let config_ids = (0..configs.len()).map(|i| idents::config(id, i));
            let index = id.0;
            let node_name = name_literal(tape, id);
            let call = quote_spanned! {node.span=>
                #rt::ops::#family::#kernel(#(#operands,)* #(#config_ids,)*)
            };
            quote! {
                #(#config_binds)*
                let #v = #rt::at(#call, #index, #node_name)?;
            }
        }
    }
}

/// The static tape as a Markdown table, for the generated docs.
pub fn tape_table(tape: &Tape) -> String {
    const MAX_ROWS: usize = 64;
    let mut table = String::from("| id | name | op | parents | grad |\n|---|---|---|---|---|\n");
    for node in tape.nodes.iter().take(MAX_ROWS) {
        let parents: Vec<String> = node.parents().iter().map(|p| p.0.to_string()).collect();
        table.push_str(&format!(
            "| {} | {} | `{}` | {} | {} |\n",
            node.id.0,
            node.name
                .as_deref()
                .map(|n| format!("`{n}`"))
                .unwrap_or_default(),
            node.op_name(),
            parents.join(", "),
            if node.requires_grad { "yes" } else { "" },
        ));
    }
    if tape.nodes.len() > MAX_ROWS {
        table.push_str(&format!(
            "| … | | | | |\n\n({} more nodes)\n",
            tape.nodes.len() - MAX_ROWS
        ));
    }
    table
}
