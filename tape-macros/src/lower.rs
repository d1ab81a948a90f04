//! Lowering: a `syn::ItemFn` becomes a [`Tape`] with fixed node ids.
//!
//! One match arm per syntax form, each headed by the syntax it handles. Ops are looked up
//! only in [`crate::ops`]. Every error goes to the [`Ctxt`] with the span of the offending
//! code, and lowering carries on past it, so one build reports every mistake.

use crate::check::{check_return, check_signature, classify_param};
use crate::ctxt::Ctxt;
use crate::ir::{Capture, Elem, Node, NodeId, NodeKind, Param, ParamKind, Tape, Verbatim};
use crate::ops::{self, OpSpec};
use proc_macro2::{Ident, Span};
use quote::ToTokens;
use std::collections::HashMap;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{BinOp, Expr, FnArg, ItemFn, Local, Pat, Stmt, UnOp};

/// Lowers a function to its tape, or returns every error found.
pub fn lower(item: ItemFn) -> syn::Result<Tape> {
    let mut lowerer = Lowerer {
        cx: Ctxt::new(),
        nodes: Vec::new(),
        scopes: vec![HashMap::new()],
    };
    let tape = lowerer.lower_fn(&item);
    lowerer.cx.finish()?;
    tape.ok_or_else(|| syn::Error::new(item.sig.ident.span(), "could not lower the function"))
}

/// Whether `attr` is `#[no_grad]`.
pub fn is_no_grad(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("no_grad")
}

struct Lowerer {
    cx: Ctxt,
    nodes: Vec<Node>,
    /// Names in scope, innermost block last; a `let` shadows by inserting again.
    scopes: Vec<HashMap<String, NodeId>>,
}

impl Lowerer {
    fn lookup(&self, name: &str) -> Option<NodeId> {
        self.scopes
            .iter()
            .rev()
            .find_map(|scope| scope.get(name).copied())
    }

    fn bind(&mut self, name: &Ident, id: NodeId) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), id);
        }
    }

    fn push_node(&mut self, kind: NodeKind, span: Span, requires_grad: bool) -> NodeId {
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node {
            id,
            kind,
            name: None,
            span,
            requires_grad,
        });
        id
    }

    fn lower_fn(&mut self, item: &ItemFn) -> Option<Tape> {
        check_signature(&mut self.cx, &item.sig);
        let elem = check_return(&mut self.cx, &item.sig);
        let params = self.lower_params(item, elem);
        let output = self.lower_body(&item.block.stmts, item.block.brace_token.span.close());
        let ret = match &item.sig.output {
            syn::ReturnType::Type(_, ty) => ty.to_token_stream(),
            syn::ReturnType::Default => quote::quote!(()),
        };
        let generics = &item.sig.generics;
        Some(Tape {
            name: item.sig.ident.clone(),
            vis: item.vis.to_token_stream(),
            generics: (
                generics.to_token_stream(),
                generics.where_clause.to_token_stream(),
            ),
            ret,
            elem: elem?,
            params,
            nodes: self.nodes.clone(),
            output: output?,
        })
    }

    // fn f(w: &Array2<f64>, #[no_grad] x: &Array2<f64>, n: usize)
    fn lower_params(&mut self, item: &ItemFn, elem: Option<Elem>) -> Vec<Param> {
        let mut params = Vec::new();
        for input in &item.sig.inputs {
            let pt = match input {
                FnArg::Receiver(r) => {
                    self.cx.push_spanned(
                        r,
                        "a differentiable function cannot take `self`: write a free function",
                    );
                    continue;
                }
                FnArg::Typed(pt) => pt,
            };
            let name = match &*pt.pat {
                Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => pi.ident.clone(),
                other => {
                    self.cx.push_spanned(
                        other,
                        "parameters must be plain names (`x: &Array1<f64>`), not patterns",
                    );
                    continue;
                }
            };
            let mut no_grad = false;
            for attr in pt.attrs.iter().filter(|a| is_no_grad(a)) {
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    self.cx
                        .push_spanned(attr, "`#[no_grad]` takes no arguments");
                } else if no_grad {
                    self.cx.push_spanned(attr, "duplicate `#[no_grad]`");
                }
                no_grad = true;
            }
            let (kind, param_elem, owned) = match classify_param(&pt.ty) {
                Ok(c) => c,
                Err(message) => {
                    self.cx.push_spanned(&pt.ty, message);
                    continue;
                }
            };
            if let (Some(expected), Some(found)) = (elem, param_elem) {
                if expected != found {
                    self.cx.push_spanned(
                        &pt.ty,
                        format!(
                            "every float in a differentiable function has one type: the function \
                             returns `{}` but `{name}` holds `{}`",
                            expected.name(),
                            found.name()
                        ),
                    );
                }
            }
            let index = params.len();
            let requires_grad = !no_grad && kind != ParamKind::Int;
            let id = self.push_node(NodeKind::Param(index), name.span(), requires_grad);
            self.nodes[id.0].name = Some(name.to_string());
            self.bind(&name, id);
            params.push(Param {
                name,
                ty: pt.ty.to_token_stream(),
                owned_ty: owned.to_token_stream(),
                kind,
                no_grad,
                node: id,
            });
        }
        params
    }

    /// Lowers statements; returns the node of the tail expression or `return`.
    fn lower_body(&mut self, stmts: &[Stmt], end: Span) -> Option<NodeId> {
        let mut output = None;
        let mut failed = false;
        for (i, stmt) in stmts.iter().enumerate() {
            let last = i + 1 == stmts.len();
            match stmt {
                // let y = …;
                Stmt::Local(local) => self.lower_local(local),
                // return y;
                Stmt::Expr(Expr::Return(ret), _) => {
                    if !last {
                        self.cx.push_spanned(ret, "code after `return` would never run: make `return` the last statement");
                    }
                    match &ret.expr {
                        Some(e) => output = self.lower_expr(e),
                        None => self.cx.push_spanned(ret, "return the function's value: `return loss;`"),
                    }
                    failed |= output.is_none();
                }
                // y (the tail expression)
                Stmt::Expr(e, None) if last => {
                    output = self.lower_expr(e);
                    failed |= output.is_none();
                }
                // y = …;
                Stmt::Expr(Expr::Assign(a), _) => self.cx.push_spanned(
                    a,
                    "reassignment is not supported yet: bind the new value with `let` (shadowing is fine)",
                ),
                // an expression statement: evaluated, value dropped
                Stmt::Expr(e, _) => {
                    let _ = self.lower_expr(e);
                }
                Stmt::Item(item) => self.cx.push_spanned(
                    item,
                    "items cannot be declared inside a differentiable function: move this item out of it",
                ),
                Stmt::Macro(m) => self.cx.push_spanned(
                    m,
                    "macros are not supported inside a differentiable function: move this out, or \
                     inspect values with the generated tape",
                ),
            }
        }
        if output.is_none() && !failed && !self.cx.has_errors() {
            self.cx.push(
                end,
                "the function must end with its value: a tail expression or `return`",
            );
        }
        output
    }

    // let y = …;   let mut y: Array1<f64> = …;   let _ = …;
    fn lower_local(&mut self, local: &Local) {
        let Some(init) = &local.init else {
            self.cx
                .push_spanned(local, "declare and bind in one `let`: `let y = …;`");
            return;
        };
        if let Some((_, diverge)) = &init.diverge {
            self.cx.push_spanned(
                diverge,
                "`let … else` is not supported in a differentiable function",
            );
            return;
        }
        let pat = match &local.pat {
            Pat::Type(pt) => &*pt.pat,
            other => other,
        };
        let name = match pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => Some(pi.ident.clone()),
            Pat::Wild(_) => None,
            other => {
                self.cx.push_spanned(
                    other,
                    "only `let name = …;` is supported, not tuple or struct patterns",
                );
                return;
            }
        };
        let first_new = self.nodes.len();
        let Some(id) = self.lower_expr(&init.expr) else {
            return;
        };
        if let Some(name) = name {
            // Name the node after the binding, unless the `let` merely renames an older node.
            if id.0 >= first_new && self.nodes[id.0].name.is_none() {
                self.nodes[id.0].name = Some(name.to_string());
            }
            self.bind(&name, id);
        }
    }

    fn lower_expr(&mut self, expr: &Expr) -> Option<NodeId> {
        match expr {
            // (e)
            Expr::Paren(p) => self.lower_expr(&p.expr),
            // an invisible group from a macro_rules! expansion
            Expr::Group(g) => self.lower_expr(&g.expr),
            // &e
            Expr::Reference(r) => {
                if r.mutability.is_some() {
                    self.cx.push_spanned(r, "`&mut` is not supported: differentiable code does not mutate values");
                    return None;
                }
                self.lower_expr(&r.expr)
            }
            // -e, *e
            Expr::Unary(u) => match u.op {
                UnOp::Neg(_) => self.lower_operator(ops::by_unary("-"), &[&u.expr], expr),
                UnOp::Deref(_) => self.lower_expr(&u.expr),
                _ => {
                    self.cx.push_spanned(u, format!("operator `{}` is not differentiable; supported operators: {}", u.op.to_token_stream(), ops::operator_names()));
                    None
                }
            },
            // a + b, a - b, a * b, a / b
            Expr::Binary(b) => self.lower_binary(b, expr),
            // 2.0, 3
            Expr::Lit(l) => match &l.lit {
                syn::Lit::Float(_) | syn::Lit::Int(_) => Some(self.push_const(expr, Vec::new())),
                other => {
                    self.cx.push_spanned(other, "only numeric literals can be values here");
                    None
                }
            },
            // x, PI, std::f64::consts::PI
            Expr::Path(p) => {
                if let Some(ident) = p.path.get_ident().filter(|_| p.qself.is_none()) {
                    if let Some(id) = self.lookup(&ident.to_string()) {
                        return Some(id);
                    }
                }
                Some(self.push_const(expr, Vec::new()))
            }
            // x.exp(), x.dot(&w), x.mean().unwrap()
            Expr::MethodCall(m) => self.lower_method(m),
            // tanh(&z), tape::mse(&p, y)
            Expr::Call(c) => self.lower_call(c),
            // { let t = …; t * 2.0 }
            Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => {
                self.scopes.push(HashMap::new());
                let out = self.lower_body(&b.block.stmts, b.block.brace_token.span.close());
                self.scopes.pop();
                out
            }
            // n as f64 (of a non-differentiable value)
            Expr::Cast(_) => {
                let captures = self.captures(expr, "a cast")?;
                Some(self.push_const(expr, captures))
            }
            Expr::If(_) => self.unsupported(expr, "`if` is not supported yet: compute both values, or move the branch out of the differentiable function"),
            Expr::Match(_) => self.unsupported(expr, "`match` is not supported in a differentiable function"),
            Expr::While(_) | Expr::Loop(_) | Expr::ForLoop(_) => self.unsupported(expr, "loops are not supported yet: write the steps out"),
            Expr::Closure(_) => self.unsupported(expr, "closures are not supported in a differentiable function: use the prelude's op functions"),
            Expr::Try(_) => self.unsupported(expr, "`?` is not supported in a differentiable function: the generated `_grad` returns errors itself"),
            Expr::Unsafe(_) => self.unsupported(expr, "`unsafe` is not supported in a differentiable function"),
            Expr::Assign(_) => self.unsupported(expr, "reassignment is not supported yet: bind the new value with `let`"),
            Expr::Index(_) => self.unsupported(expr, "indexing is not supported yet: use whole-array ops"),
            Expr::Field(_) => self.unsupported(expr, "field access is not supported: pass the value as a parameter"),
            Expr::Return(_) => self.unsupported(expr, "`return` is only supported as the last statement"),
            Expr::Macro(_) => self.unsupported(expr, "macros are not supported inside a differentiable function"),
            _ => self.unsupported(expr, "this expression is not supported in a differentiable function: use `let` bindings, operators `+ - * /`, the prelude's op functions and ndarray methods"),
        }
    }

    fn unsupported(&mut self, expr: &Expr, message: &str) -> Option<NodeId> {
        self.cx.push_spanned(expr, message);
        None
    }

    fn push_const(&mut self, expr: &Expr, captures: Vec<Capture>) -> NodeId {
        let float_literal = matches!(
            expr,
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Float(_),
                ..
            })
        );
        let verbatim = Verbatim {
            tokens: expr.to_token_stream(),
            captures,
            float_literal,
        };
        self.push_node(NodeKind::Const(verbatim), expr.span(), false)
    }

    fn lower_binary(&mut self, b: &syn::ExprBinary, expr: &Expr) -> Option<NodeId> {
        let symbol = match b.op {
            BinOp::Add(_) => "+",
            BinOp::Sub(_) => "-",
            BinOp::Mul(_) => "*",
            BinOp::Div(_) => "/",
            BinOp::AddAssign(_)
            | BinOp::SubAssign(_)
            | BinOp::MulAssign(_)
            | BinOp::DivAssign(_) => {
                self.cx.push_spanned(b, "compound assignment is not supported yet: bind the new value with `let y = y + …;`");
                return None;
            }
            _ => {
                self.cx.push_spanned(
                    &b.op,
                    format!(
                        "operator `{}` is not differentiable; supported operators: {}",
                        b.op.to_token_stream(),
                        ops::operator_names()
                    ),
                );
                return None;
            }
        };
        self.lower_operator(ops::by_binary(symbol), &[&b.left, &b.right], expr)
    }

    fn lower_operator(
        &mut self,
        op: Option<&'static OpSpec>,
        operands: &[&Expr],
        expr: &Expr,
    ) -> Option<NodeId> {
        let Some(op) = op else {
            return self.unsupported(expr, "operator missing from the op table");
        };
        self.lower_op(op, operands, &[], expr.span())
    }

    // x.exp(), x.dot(&w), x.sum_axis(Axis(1)), x.mean().unwrap(), x.clone()
    fn lower_method(&mut self, m: &syn::ExprMethodCall) -> Option<NodeId> {
        let name = m.method.to_string();
        if let Some(t) = &m.turbofish {
            self.cx
                .push_spanned(t, "turbofish arguments are not supported here");
            return None;
        }
        if ops::UNWRAP_METHODS.contains(&name.as_str()) {
            return self.lower_unwrap(m, &name);
        }
        if ops::IDENTITY_METHODS.contains(&name.as_str()) && m.args.is_empty() {
            return self.lower_expr(&m.receiver);
        }
        let Some(op) = ops::by_method(&name) else {
            self.cx.push(
                m.method.span(),
                format!(
                    "unsupported method `{name}`: differentiable code can call {}",
                    ops::method_names()
                ),
            );
            return None;
        };
        let args: Vec<&Expr> = std::iter::once(&*m.receiver).chain(m.args.iter()).collect();
        self.lower_op_call(op, &args, m.method.span(), m.span())
    }

    // x.mean().unwrap(), x.mean_axis(Axis(0)).expect("non-empty")
    fn lower_unwrap(&mut self, m: &syn::ExprMethodCall, name: &str) -> Option<NodeId> {
        let inner = match &*m.receiver {
            Expr::MethodCall(inner) => ops::by_method(&inner.method.to_string()),
            Expr::Call(call) => function_name(call).and_then(|n| ops::by_function(&n.to_string())),
            _ => None,
        };
        match inner {
            Some(op) if op.returns_option => self.lower_expr(&m.receiver),
            _ => {
                self.cx.push(
                    m.method.span(),
                    format!("`.{name}()` is only supported on ops that return an `Option` (`mean`, `mean_axis`)"),
                );
                None
            }
        }
    }

    // tanh(&z), mse(&h, y), tape::prelude::softmax(&z)
    fn lower_call(&mut self, c: &syn::ExprCall) -> Option<NodeId> {
        let Some(ident) = function_name(c) else {
            self.cx.push_spanned(
                &c.func,
                "only the prelude's op functions can be called here, by name",
            );
            return None;
        };
        let name = ident.to_string();
        let Some(op) = ops::by_function(&name) else {
            self.cx.push(
                ident.span(),
                format!(
                    "unknown function `{name}`: differentiable code can call the prelude's op functions {} \
                     (calling other functions is not supported yet)",
                    ops::function_names()
                ),
            );
            return None;
        };
        let args: Vec<&Expr> = c.args.iter().collect();
        self.lower_op_call(op, &args, ident.span(), c.span())
    }

    fn lower_op_call(
        &mut self,
        op: &'static OpSpec,
        args: &[&Expr],
        name_span: Span,
        span: Span,
    ) -> Option<NodeId> {
        let expected = op.operands + op.configs.len();
        if args.len() != expected {
            self.cx.push(
                name_span,
                format!(
                    "`{}` takes {} argument{}, found {}",
                    op.name,
                    expected,
                    if expected == 1 { "" } else { "s" },
                    args.len()
                ),
            );
            return None;
        }
        let (operands, configs) = args.split_at(op.operands);
        self.lower_op(op, operands, configs, span)
    }

    fn lower_op(
        &mut self,
        op: &'static OpSpec,
        operands: &[&Expr],
        configs: &[&Expr],
        span: Span,
    ) -> Option<NodeId> {
        let args: Vec<Option<NodeId>> = operands.iter().map(|e| self.lower_expr(e)).collect();
        let configs: Vec<Option<Verbatim>> = configs
            .iter()
            .map(|e| {
                let captures = self.captures(e, &format!("an argument of `{}`", op.name))?;
                Some(Verbatim {
                    tokens: e.to_token_stream(),
                    captures,
                    float_literal: false,
                })
            })
            .collect();
        let args: Vec<NodeId> = args.into_iter().collect::<Option<_>>()?;
        let configs: Vec<Verbatim> = configs.into_iter().collect::<Option<_>>()?;
        let requires_grad = args.iter().any(|a| self.nodes[a.0].requires_grad);
        Some(self.push_node(NodeKind::Op { op, args, configs }, span, requires_grad))
    }

    /// The function's names a constant expression reads, each bound to its node; an error if
    /// the value of a differentiable one is read (its shape may be: `x.len() as f64`).
    fn captures(&mut self, expr: &Expr, what: &str) -> Option<Vec<Capture>> {
        let mut names = NameCollector::default();
        names.visit_expr(expr);
        let mut captures: Vec<Capture> = Vec::new();
        let mut ok = true;
        for ident in &names.values {
            let Some(node) = self.lookup(&ident.to_string()) else {
                continue;
            };
            if self.nodes[node.0].requires_grad {
                self.cx.push(
                    ident.span(),
                    format!(
                        "`{ident}` is differentiable, so it cannot be used in {what}, which must be a \
                         constant: a literal, a `const`, a `#[no_grad]` or integer input, or a \
                         shape such as `x.len()`"
                    ),
                );
                ok = false;
            } else if !captures.iter().any(|c| c.ident == *ident) {
                captures.push(Capture {
                    ident: ident.clone(),
                    node,
                    shape_only: false,
                });
            }
        }
        for ident in names.shapes {
            let Some(node) = self.lookup(&ident.to_string()) else {
                continue;
            };
            if !captures.iter().any(|c| c.ident == ident) {
                captures.push(Capture {
                    ident,
                    node,
                    shape_only: true,
                });
            }
        }
        ok.then_some(captures)
    }
}

/// The op-function name of a call: `tanh` in `tanh(x)`, `tape::tanh(x)` or
/// `tape::prelude::tanh(x)`.
fn function_name(c: &syn::ExprCall) -> Option<&Ident> {
    let Expr::Path(p) = &*c.func else { return None };
    if p.qself.is_some() || p.path.segments.iter().any(|s| !s.arguments.is_none()) {
        return None;
    }
    let segments = &p.path.segments;
    let first = segments.first()?;
    if segments.len() == 1 || first.ident == "tape" {
        segments.last().map(|s| &s.ident)
    } else {
        None
    }
}

/// Collects the single names an expression reads: as values (`n` in `n as f64`), or only
/// for their shape (`x` in `x.len() as f64`).
#[derive(Default)]
struct NameCollector {
    values: Vec<Ident>,
    shapes: Vec<Ident>,
}

/// `x` in `x`, `&x`, `(x)`.
fn bare_name(expr: &Expr) -> Option<&Ident> {
    match expr {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
        Expr::Reference(r) => bare_name(&r.expr),
        Expr::Paren(p) => bare_name(&p.expr),
        Expr::Group(g) => bare_name(&g.expr),
        _ => None,
    }
}

impl<'ast> Visit<'ast> for NameCollector {
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if let Some(ident) = bare_name(&Expr::Path(p.clone())) {
            self.values.push(ident.clone());
        }
        syn::visit::visit_expr_path(self, p);
    }

    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        let shape_query = ops::SHAPE_METHODS.contains(&m.method.to_string().as_str());
        match bare_name(&m.receiver) {
            Some(ident) if shape_query => {
                self.shapes.push(ident.clone());
                for arg in &m.args {
                    self.visit_expr(arg);
                }
            }
            _ => syn::visit::visit_expr_method_call(self, m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn errors(item: ItemFn) -> Vec<String> {
        match lower(item) {
            Ok(_) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn lowers_a_small_model() {
        let tape = lower(parse_quote! {
            fn loss(w: &Array2<f64>, b: &Array1<f64>, #[no_grad] x: &Array2<f64>, #[no_grad] y: &Array2<f64>) -> f64 {
                let z = x.dot(w) + b;
                let h = tanh(&z);
                mse(&h, y)
            }
        })
        .unwrap();
        let ops: Vec<_> = tape.nodes.iter().map(|n| n.op_name()).collect();
        assert_eq!(
            ops,
            [
                "input", "input", "input", "input", "dot", "add", "tanh", "mse"
            ]
        );
        let names: Vec<_> = tape.nodes.iter().map(|n| n.name.as_deref()).collect();
        assert_eq!(
            names,
            [
                Some("w"),
                Some("b"),
                Some("x"),
                Some("y"),
                None,
                Some("z"),
                Some("h"),
                None
            ]
        );
        assert_eq!(tape.nodes[4].parents(), [NodeId(2), NodeId(0)]);
        assert_eq!(tape.output, NodeId(7));
        let grads: Vec<_> = tape.nodes.iter().map(|n| n.requires_grad).collect();
        assert_eq!(grads, [true, true, false, false, true, true, true, true]);
    }

    #[test]
    fn shadowing_makes_new_nodes_and_blocks_scope_names() {
        let tape = lower(parse_quote! {
            fn f(x: f64) -> f64 {
                let y = x * 2.0;
                let y = { let t = y.exp(); t + y };
                y.ln()
            }
        })
        .unwrap();
        let ops: Vec<_> = tape.nodes.iter().map(|n| n.op_name()).collect();
        assert_eq!(ops, ["input", "const", "mul", "exp", "add", "ln"]);
        assert_eq!(tape.nodes[4].name.as_deref(), Some("y"));
        assert_eq!(tape.nodes[4].parents(), [NodeId(3), NodeId(2)]);
    }

    #[test]
    fn every_error_is_reported_at_once() {
        let errs = errors(parse_quote! {
            fn f(x: &Array1<f64>) -> f64 {
                let a = x.mapv(|v| v);
                let b = frobnicate(x);
                while true {}
                x.sum()
            }
        });
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with("unsupported method `mapv`"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].starts_with("unknown function `frobnicate`"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].starts_with("loops are not supported"),
            "{}",
            errs[2]
        );
    }

    #[test]
    fn constant_arguments_cannot_be_differentiable() {
        let errs = errors(parse_quote! {
            fn f(x: f64, p: f64) -> f64 { x.powf(p) }
        });
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with(
                "`p` is differentiable, so it cannot be used in an argument of `powf`"
            ),
            "{errs:?}"
        );
        assert!(
            errors(parse_quote! { fn f(x: f64, #[no_grad] p: f64) -> f64 { x.powf(p) } })
                .is_empty()
        );
    }

    #[test]
    fn signature_errors() {
        let errs = errors(parse_quote! {
            async fn f<T>(&self, x: &mut Array1<f64>, y: Vec<f64>) -> Array1<f64> { x.sum() }
        });
        assert_eq!(errs.len(), 6, "{errs:?}");
        let errs = errors(parse_quote! { fn f(x: f32) -> f64 { x } });
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("one type"), "{errs:?}");
    }
}
