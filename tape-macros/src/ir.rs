//! The tape IR: a function lowered to a static tape of nodes with fixed ids.
//!
//! Plain data: built by `lower`, read by `check` and `codegen`, testable without generating
//! code. User code that is re-emitted as written (constants, an op's constant arguments, the
//! parameter types) is carried as tokens.

use crate::ops::OpSpec;
use proc_macro2::{Ident, Span, TokenStream};

/// A node's id: its index in [`Tape::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

/// The float type a function computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    /// `f32`
    F32,
    /// `f64`
    F64,
}

impl Elem {
    /// The type's name.
    pub fn name(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F64 => "f64",
        }
    }
}

/// How a parameter is passed, which decides how generated code refers to its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// `x: f64`
    Scalar,
    /// `x: &Array2<f64>`
    ArrayRef,
    /// `x: Array2<f64>`
    ArrayOwned,
    /// `n: usize` and the other integer types: never differentiable.
    Int,
}

/// One parameter of the function.
#[derive(Debug, Clone)]
pub struct Param {
    /// The parameter's name.
    pub name: Ident,
    /// Its type as written (with any reference).
    pub ty: TokenStream,
    /// Its type without the reference: the type of its gradient.
    pub owned_ty: TokenStream,
    /// How it is passed.
    pub kind: ParamKind,
    /// `#[no_grad]` was written on it.
    pub no_grad: bool,
    /// Its node.
    pub node: NodeId,
}

impl Param {
    /// Whether the parameter gets a gradient field.
    pub fn differentiable(&self) -> bool {
        !self.no_grad && self.kind != ParamKind::Int
    }
}

/// User code re-emitted as written, with the function's names it reads bound to node values.
#[derive(Debug, Clone)]
pub struct Verbatim {
    /// The expression's tokens.
    pub tokens: TokenStream,
    /// Names the expression reads that are bound in the function (parameters, `let`s).
    pub captures: Vec<Capture>,
    /// A float literal, typed as the function's float type where it is bound (so that
    /// `2.0 * x` needs no inference).
    pub float_literal: bool,
}

/// A name that verbatim code reads, and the node it is bound to.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The name as the code writes it.
    pub ident: Ident,
    /// The node it holds.
    pub node: NodeId,
    /// Only its shape is read (`x.len()`, `x.nrows()`): bound by reference, and allowed even
    /// for a differentiable value, since no derivative flows through a shape. Otherwise the
    /// value is read and the node must not require a gradient.
    pub shape_only: bool,
}

/// What a node computes.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// The `index`-th parameter.
    Param(usize),
    /// A constant: a literal, a `const`, a cast of an integer input.
    Const(Verbatim),
    /// An op from the table applied to earlier nodes, with constant arguments.
    Op {
        /// The table row.
        op: &'static OpSpec,
        /// The operands, in order.
        args: Vec<NodeId>,
        /// The constant arguments, in order.
        configs: Vec<Verbatim>,
    },
}

/// One node of the tape.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its id.
    pub id: NodeId,
    /// What it computes.
    pub kind: NodeKind,
    /// The parameter or `let` binding that holds it, if any.
    pub name: Option<String>,
    /// The source code that made it, for error spans.
    pub span: Span,
    /// Whether it depends on a differentiable parameter.
    pub requires_grad: bool,
}

impl Node {
    /// The ids of the node's operands (none for parameters and constants).
    pub fn parents(&self) -> &[NodeId] {
        match &self.kind {
            NodeKind::Op { args, .. } => args,
            _ => &[],
        }
    }

    /// The op's name as `NodeInfo::op` spells it.
    pub fn op_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Param(_) => "input",
            NodeKind::Const(_) => "const",
            NodeKind::Op { op, .. } => op.name,
        }
    }
}

/// A function lowered to a static tape.
#[derive(Debug, Clone)]
pub struct Tape {
    /// The function's name.
    pub name: Ident,
    /// The function's visibility, as written.
    pub vis: TokenStream,
    /// The function's generic parameters (lifetimes only) and where clause, as written.
    pub generics: (TokenStream, TokenStream),
    /// The return type, as written.
    pub ret: TokenStream,
    /// The float type.
    pub elem: Elem,
    /// The parameters, in signature order; their nodes come first in `nodes`.
    pub params: Vec<Param>,
    /// Every node, in evaluation order; every parent id is smaller than its child's.
    pub nodes: Vec<Node>,
    /// The node whose value the function returns.
    pub output: NodeId,
}

impl Tape {
    /// The node with id `id`.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.0]
    }

    /// For every node, whether the reverse sweep from the output visits it: the output (if it
    /// requires a gradient) and every requires-grad node with a path to it. Nodes outside
    /// this set get no gradient code at all.
    pub fn reached(&self) -> Vec<bool> {
        let mut reached = vec![false; self.nodes.len()];
        if let Some(out) = reached.get_mut(self.output.0) {
            *out = self.nodes[self.output.0].requires_grad;
        }
        for node in self.nodes.iter().rev() {
            if reached[node.id.0] {
                for parent in node.parents() {
                    if self.nodes[parent.0].requires_grad {
                        reached[parent.0] = true;
                    }
                }
            }
        }
        reached
    }
}

#[cfg(test)]
mod tests {
    use crate::lower::lower;
    use syn::parse_quote;

    #[test]
    fn reused_value_counts_every_use() {
        let tape = lower(parse_quote! {
            fn f(x: f64, #[no_grad] c: f64) -> f64 {
                let y = x * x;
                let unused = x.exp();
                y + x * c
            }
        })
        .unwrap();
        // x, c, y = mul(x, x), unused = exp(x), mul(x, c), add(y, ·)
        let ops: Vec<_> = tape.nodes.iter().map(|n| n.op_name()).collect();
        assert_eq!(ops, ["input", "input", "mul", "exp", "mul", "add"]);
        assert_eq!(tape.nodes[2].name.as_deref(), Some("y"));
        let reached = tape.reached();
        assert_eq!(reached, [true, false, true, false, true, true]);
        assert!(!tape.nodes[1].requires_grad);
    }
}
