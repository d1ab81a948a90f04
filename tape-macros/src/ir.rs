//! The tape IR: a function lowered to a static tape of nodes with fixed ids.
//!
//! Plain data: built by `lower`, read by `check` and `codegen`, testable without generating
//! code. User code that is re-emitted as written (constants, an op's constant arguments, the
//! parameter types) is carried as tokens.

use crate::ops::{OpSpec, Output};
use proc_macro2::{Ident, Span, TokenStream};

/// A node's id: its index in [`Tape::nodes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

/// The float type a function computes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Elem {
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// A type parameter bounded by `tape::Float`: `fn f<F: Float>(x: &Array1<F>) -> F`.
    Generic(Ident),
}

impl Elem {
    /// The type's name, for messages.
    pub fn name(&self) -> String {
        match self {
            Elem::F32 => "f32".into(),
            Elem::F64 => "f64".into(),
            Elem::Generic(ident) => ident.to_string(),
        }
    }

    /// The type, as generated code writes it.
    pub fn tokens(&self) -> TokenStream {
        match self {
            Elem::F32 => quote::quote!(f32),
            Elem::F64 => quote::quote!(f64),
            Elem::Generic(ident) => quote::quote!(#ident),
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
    /// Its value, where it is an integer expression the macro can evaluate (`x[i + 1]`'s
    /// index in an unrolled loop): `_grad` then reads the element with no bounds check.
    pub known: Option<i128>,
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

/// An argument of a call to another differentiable function.
#[derive(Debug, Clone, Copy)]
pub struct CallArg {
    /// The argument's node.
    pub node: NodeId,
    /// Written `&e`: passed by reference; otherwise by value (a copy of the node's value).
    pub by_ref: bool,
}

/// What a node computes.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// The `index`-th parameter.
    Param(usize),
    /// A constant: a literal, a `const`, a cast of an integer input.
    Const(Verbatim),
    /// A branch condition (`bool`, never differentiable): the user's test, evaluated where the
    /// node's guard holds and `false` elsewhere.
    Cond(Verbatim),
    /// The value of an `if`: `then` where `cond` holds, else `other`.
    Select {
        /// The condition node.
        cond: NodeId,
        /// The `then` arm's value.
        then: NodeId,
        /// The `else` arm's value.
        other: NodeId,
    },
    /// A call of another `#[differentiable]` function, whose VJP runs the callee's generated
    /// reverse code.
    Call {
        /// The callee's path as written (`layer`, `nn::layer`).
        path: syn::Path,
        /// The arguments, in order.
        args: Vec<CallArg>,
    },
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
    /// Whether its value is known at expansion time to be a float scalar (a scalar
    /// parameter, a float literal, a reduction, an elementwise op of scalars): such nodes may
    /// skip the array kernels. Set by [`infer_scalars`].
    pub scalar: bool,
    /// The fused elementwise group `_grad` computes the node in, if any (set on the copy of
    /// the tape that `_grad` is generated from; see `codegen::fuse`).
    pub group: Option<usize>,
    /// The branch conditions under which the node is evaluated (all must hold; `(c, false)`
    /// means condition `c` is false). Empty outside any `if`.
    pub guard: Vec<(NodeId, bool)>,
}

impl Node {
    /// The ids of the node's operands (none for parameters and constants).
    pub fn parents(&self) -> Vec<NodeId> {
        match &self.kind {
            NodeKind::Op { args, .. } => args.clone(),
            NodeKind::Call { args, .. } => args.iter().map(|a| a.node).collect(),
            NodeKind::Select { then, other, .. } => vec![*then, *other],
            NodeKind::Param(_) | NodeKind::Const(_) | NodeKind::Cond(_) => Vec::new(),
        }
    }

    /// Whether the node is the parameter bound to `name` (not a `let` that renamed it).
    pub fn kind_is_param_named(&self, name: &str) -> bool {
        matches!(self.kind, NodeKind::Param(_)) && self.name.as_deref() == Some(name)
    }

    /// The op's name as `NodeInfo::op` spells it.
    pub fn op_name(&self) -> String {
        match &self.kind {
            NodeKind::Param(_) => "input".into(),
            NodeKind::Const(_) => "const".into(),
            NodeKind::Cond(_) => "cond".into(),
            NodeKind::Select { .. } => "select".into(),
            NodeKind::Op { op, .. } => op.name.into(),
            NodeKind::Call { path, .. } => crate::check::pretty(path),
        }
    }
}

/// Sets [`Node::scalar`] on every node, parents before children.
pub fn infer_scalars(params: &[Param], nodes: &mut [Node]) {
    for i in 0..nodes.len() {
        let scalar = match &nodes[i].kind {
            NodeKind::Param(p) => params[*p].kind == ParamKind::Scalar,
            NodeKind::Const(code) => code.float_literal,
            NodeKind::Cond(_) | NodeKind::Call { .. } => false,
            NodeKind::Select { then, other, .. } => nodes[then.0].scalar && nodes[other.0].scalar,
            NodeKind::Op { op, args, .. } => match op.output {
                Output::Scalar => true,
                Output::Tensor => op.elementwise && args.iter().all(|a| nodes[a.0].scalar),
            },
        };
        nodes[i].scalar = scalar;
    }
}

/// A function lowered to a static tape.
#[derive(Debug, Clone)]
pub struct Tape {
    /// The function's name.
    pub name: Ident,
    /// The function's visibility, as written.
    pub vis: TokenStream,
    /// The function's generic parameters (lifetimes, and the float type of a generic
    /// function) and where clause, as written.
    pub generics: syn::Generics,
    /// The return type, as written.
    pub ret: TokenStream,
    /// The float type.
    pub elem: Elem,
    /// The parameters, in signature order; their nodes come first in `nodes`.
    pub params: Vec<Param>,
    /// Every node, in evaluation order; every parent id is smaller than its child's.
    pub nodes: Vec<Node>,
    /// The node whose value the function returns (the first element for a tuple return).
    pub output: NodeId,
    /// Whether the output is a float scalar (else an array: no `_grad`, a seeded tape only).
    pub scalar_output: bool,
    /// The auxiliary outputs of a `(F, Aux)` return, passed through as `FGrad::aux`.
    pub aux: Option<Aux>,
    /// `const` items declared in the body, re-emitted in every generated function.
    pub items: Vec<TokenStream>,
}

/// Auxiliary outputs: everything after the first element of a returned tuple.
#[derive(Debug, Clone)]
pub struct Aux {
    /// The expression, e.g. `(h, correct)` for `(loss, h, correct)`.
    pub code: Verbatim,
    /// Its type.
    pub ty: TokenStream,
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
                for parent in &node.parents() {
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
