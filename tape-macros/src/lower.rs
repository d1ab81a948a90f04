//! Lowering: a `syn::ItemFn` becomes a [`Tape`] with fixed node ids.
//!
//! One match arm per syntax form, each headed by the syntax it handles. Ops are looked up
//! only in [`crate::ops`]. Every error goes to the [`Ctxt`] with the span of the offending
//! code, and lowering carries on past it, so one build reports every mistake.
//!
//! Control flow is resolved here, so the tape stays static:
//! - reassignment (`y = …`, `y += …`) binds the name to a fresh node (SSA);
//! - `for` loops with bounds known at expansion time are unrolled, each iteration's nodes
//!   named `y#i`;
//! - `if`/`else` keeps the nodes of every arm, each guarded by its condition, and merges the
//!   arm values (and every variable an arm reassigns) in a `select` node.

use crate::check::{Ret, check_return, check_signature, classify_param};
use crate::ctxt::Ctxt;
use crate::ir::{
    Aux, CallArg, Capture, Elem, Node, NodeId, NodeKind, Param, ParamKind, Tape, Verbatim,
};
use crate::ops::{self, OpSpec};
use proc_macro2::{Ident, Span, TokenStream};
use quote::ToTokens;
use std::collections::HashMap;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{BinOp, Expr, FnArg, ItemFn, Local, Pat, Stmt, UnOp};

/// The most nodes one function's tape may have (after unrolling loops). A larger tape is a
/// compile error: the generated code would take rustc minutes to compile.
pub const MAX_NODES: usize = 20_000;

/// Lowers a function to its tape, or returns every error found.
pub fn lower(item: ItemFn) -> syn::Result<Tape> {
    let mut lowerer = Lowerer {
        cx: Ctxt::new(),
        nodes: Vec::new(),
        scopes: vec![HashMap::new()],
        consts: HashMap::new(),
        items: Vec::new(),
        iterations: Vec::new(),
        guard: Vec::new(),
        float: None,
        too_big: false,
        aux: None,
    };
    let tape = lowerer.lower_fn(&item);
    lowerer.cx.finish()?;
    tape.ok_or_else(|| syn::Error::new(item.sig.ident.span(), "could not lower the function"))
}

/// Whether `attr` is `#[no_grad]`.
pub fn is_no_grad(attr: &syn::Attribute) -> bool {
    attr.path().is_ident("no_grad")
}

/// What a name is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    /// A node's value.
    Node(NodeId),
    /// The index of an unrolled loop, known at expansion time.
    Index(i128),
}

/// What a block's last expression is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The function body: the tail (or `return`) is the output; `tuple` for a `(loss, aux…)`
    /// return type.
    Body { tuple: bool },
    /// A block whose tail is its value.
    Value,
    /// A block without a value (a loop body, an `if` used as a statement).
    Statements,
}

/// Where a constant expression appears, which decides which names it may read.
#[derive(Clone, Copy)]
enum Context<'a> {
    /// A constant: only non-differentiable values (and shapes).
    Constant(&'a str),
    /// A branch condition: the same, and anything inside `detach(…)`.
    Condition,
    /// An auxiliary output: anything (it is not differentiated).
    Aux,
}

struct Lowerer {
    cx: Ctxt,
    nodes: Vec<Node>,
    /// Names in scope, innermost block last; a `let` shadows by inserting again.
    scopes: Vec<HashMap<String, Binding>>,
    /// Integer `const` items of the body, for loop bounds.
    consts: HashMap<String, i128>,
    /// `const` items of the body, re-emitted in the generated functions.
    items: Vec<TokenStream>,
    /// Indices of the enclosing unrolled loops, outermost first.
    iterations: Vec<i128>,
    /// The branch conditions that hold where the code being lowered runs.
    guard: Vec<(NodeId, bool)>,
    /// The float type parameter of a generic function.
    float: Option<Ident>,
    /// The tape passed [`MAX_NODES`]: stop unrolling.
    too_big: bool,
    aux: Option<Aux>,
}

impl Lowerer {
    fn lookup(&self, name: &str) -> Option<Binding> {
        self.scopes
            .iter()
            .rev()
            .find_map(|scope| scope.get(name).copied())
    }

    /// The node a name holds; a loop index becomes a constant node.
    fn resolve(&mut self, ident: &Ident) -> Option<NodeId> {
        match self.lookup(&ident.to_string())? {
            Binding::Node(id) => Some(id),
            Binding::Index(i) => {
                let literal = proc_macro2::Literal::i128_unsuffixed(i);
                let verbatim = Verbatim {
                    tokens: literal.to_token_stream(),
                    captures: Vec::new(),
                    float_literal: false,
                    known: Some(i),
                };
                let id = self.push_node(NodeKind::Const(verbatim), ident.span(), false);
                self.name_node(id, &ident.to_string());
                Some(id)
            }
        }
    }

    fn bind(&mut self, name: &Ident, id: NodeId) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.insert(name.to_string(), Binding::Node(id));
        }
    }

    /// Names a node after a binding, with the enclosing loop indices: `y`, `y#3`, `y#3#0`.
    fn name_node(&mut self, id: NodeId, base: &str) {
        let mut name = base.to_string();
        for i in &self.iterations {
            name.push_str(&format!("#{i}"));
        }
        self.nodes[id.0].name = Some(name);
    }

    fn push_node(&mut self, kind: NodeKind, span: Span, requires_grad: bool) -> NodeId {
        if self.nodes.len() == MAX_NODES && !self.too_big {
            self.too_big = true;
            self.cx.push_always(
                span,
                format!(
                    "the tape of this function passes {MAX_NODES} nodes (after unrolling loops): \
                     split it into smaller differentiable functions that call each other"
                ),
            );
        }
        let id = NodeId(self.nodes.len());
        self.nodes.push(Node {
            id,
            kind,
            name: None,
            span,
            requires_grad,
            scalar: false,
            group: None,
            guard: self.guard.clone(),
        });
        id
    }

    fn lower_fn(&mut self, item: &ItemFn) -> Option<Tape> {
        self.float = check_signature(&mut self.cx, &item.sig);
        let ret = check_return(&mut self.cx, &item.sig, self.float.as_ref());
        let elem = ret.as_ref().map(|(e, _)| e.clone());
        let params = self.lower_params(item, elem.as_ref());
        let tuple = matches!(ret, Some((_, Ret::Tuple { .. })));
        let output = self.lower_block(
            &item.block.stmts,
            item.block.brace_token.span.close(),
            Mode::Body { tuple },
        );
        let (elem, ret_kind) = ret?;
        let ret_tokens = match &item.sig.output {
            syn::ReturnType::Type(_, ty) => ty.to_token_stream(),
            syn::ReturnType::Default => quote::quote!(()),
        };
        let mut aux = self.aux.take();
        if let (Some(a), Ret::Tuple { aux: ty }) = (&mut aux, &ret_kind) {
            a.ty = ty.clone();
        }
        crate::ir::infer_scalars(&params, &mut self.nodes);
        Some(Tape {
            name: item.sig.ident.clone(),
            vis: item.vis.to_token_stream(),
            generics: item.sig.generics.clone(),
            ret: ret_tokens,
            elem,
            params,
            nodes: std::mem::take(&mut self.nodes),
            output: output?,
            scalar_output: !matches!(ret_kind, Ret::Array),
            aux,
            items: std::mem::take(&mut self.items),
        })
    }

    // fn f(w: &Array2<f64>, #[no_grad] x: &Array2<f64>, n: usize)
    fn lower_params(&mut self, item: &ItemFn, elem: Option<&Elem>) -> Vec<Param> {
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
            let (kind, param_elem, owned) = match classify_param(&pt.ty, self.float.as_ref()) {
                Ok(c) => c,
                Err(message) => {
                    self.cx.push_spanned(&pt.ty, message);
                    continue;
                }
            };
            if let (Some(expected), Some(found)) = (elem, &param_elem) {
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

    /// Lowers a block's statements; returns the node of its value (the tail expression, or for
    /// the function body the tail or `return`).
    fn lower_block(&mut self, stmts: &[Stmt], end: Span, mode: Mode) -> Option<NodeId> {
        let mut output = None;
        let mut failed = false;
        for (i, stmt) in stmts.iter().enumerate() {
            if self.too_big {
                return None;
            }
            let last = i + 1 == stmts.len();
            match stmt {
                // let y = …;
                Stmt::Local(local) => self.lower_local(local),
                // return y;  (the function body's last statement)
                Stmt::Expr(Expr::Return(ret), _) => {
                    let Mode::Body { tuple } = mode else {
                        self.cx.push_spanned(
                            ret,
                            "`return` is only supported as the last statement of the function",
                        );
                        continue;
                    };
                    if !last {
                        self.cx.push_spanned(
                            ret,
                            "code after `return` would never run: make `return` the last statement",
                        );
                    }
                    match &ret.expr {
                        Some(e) => output = self.lower_result(e, tuple),
                        None => self
                            .cx
                            .push_spanned(ret, "return the function's value: `return loss;`"),
                    }
                    failed |= output.is_none();
                }
                // for i in 0..N { … }
                Stmt::Expr(Expr::ForLoop(f), _) => {
                    self.lower_for(f);
                    if last && mode != Mode::Statements {
                        self.cx.push_spanned(
                            f,
                            "a loop has no value: end the block with the value after the loop",
                        );
                        failed = true;
                    }
                }
                // y (the tail expression)
                Stmt::Expr(e, None) if last && mode != Mode::Statements => {
                    output = match mode {
                        Mode::Body { tuple } => self.lower_result(e, tuple),
                        _ => self.lower_expr(e),
                    };
                    failed |= output.is_none();
                }
                // y = …;
                Stmt::Expr(Expr::Assign(a), _) => {
                    if let Some(id) = self.lower_expr(&a.right) {
                        self.assign(&a.left, id);
                    }
                }
                // y += …;  y -= …;  y *= …;  y /= …;
                Stmt::Expr(Expr::Binary(b), _) if compound_symbol(&b.op).is_some() => {
                    let op = compound_symbol(&b.op).and_then(ops::by_binary);
                    if let Some(id) = self.lower_operator(op, &[&b.left, &b.right], b.span()) {
                        self.assign(&b.left, id);
                    }
                }
                // if c { … } (as a statement: arms may reassign)
                Stmt::Expr(Expr::If(ei), _) => {
                    let _ = self.lower_if(ei, false);
                }
                // an expression statement: evaluated, value dropped
                Stmt::Expr(e, _) => {
                    let _ = self.lower_expr(e);
                }
                // const N: usize = 8;
                Stmt::Item(syn::Item::Const(c)) => self.lower_const_item(c),
                Stmt::Item(item) => self.cx.push_spanned(
                    item,
                    "items cannot be declared inside a differentiable function (only `const`s): \
                     move this item out of it",
                ),
                Stmt::Macro(m) => self.cx.push_spanned(
                    m,
                    "macros are not supported inside a differentiable function: move this out, or \
                     inspect values with the generated tape",
                ),
            }
        }
        if mode != Mode::Statements && output.is_none() && !failed && !self.cx.has_errors() {
            let message = if matches!(mode, Mode::Body { .. }) {
                "the function must end with its value: a tail expression or `return`"
            } else {
                "this block must end with its value"
            };
            self.cx.push(end, message);
        }
        output
    }

    /// The function's result: the output node, and for a tuple return the auxiliary values.
    // (loss, aux)
    fn lower_result(&mut self, expr: &Expr, tuple: bool) -> Option<NodeId> {
        if !tuple {
            return self.lower_expr(expr);
        }
        let mut inner = expr;
        while let Expr::Paren(p) = inner {
            inner = &p.expr;
        }
        let Expr::Tuple(t) = inner else {
            self.cx.push_spanned(
                expr,
                "return the tuple itself: `(loss, aux)`, with the differentiated value first",
            );
            return None;
        };
        let elems: Vec<&Expr> = t.elems.iter().collect();
        let (first, rest) = elems.split_first()?;
        let output = self.lower_expr(first)?;
        let tokens = match rest {
            [one] => one.to_token_stream(),
            many => quote::quote!((#(#many),*)),
        };
        let mut captures: Vec<Capture> = Vec::new();
        for e in rest {
            for c in self.captures(e, Context::Aux)? {
                if !captures.iter().any(|k| k.ident == c.ident) {
                    captures.push(c);
                }
            }
        }
        self.aux = Some(Aux {
            code: Verbatim {
                tokens,
                captures,
                float_literal: false,
                known: None,
            },
            ty: TokenStream::new(),
        });
        Some(output)
    }

    // const N: usize = 8;
    fn lower_const_item(&mut self, c: &syn::ItemConst) {
        if let Some(value) = self.eval_int(&c.expr) {
            self.consts.insert(c.ident.to_string(), value);
        }
        self.items.push(c.to_token_stream());
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
                self.name_node(id, &name.to_string());
            }
            self.bind(&name, id);
        }
    }

    /// Binds the name on the left of `=` (where it was declared) to `id`.
    fn assign(&mut self, left: &Expr, id: NodeId) {
        let Some(ident) = bare_path(left) else {
            self.cx.push_spanned(left, "only a local name can be assigned (`y = …`), not a field, an index or a dereference");
            return;
        };
        let name = ident.to_string();
        let Some(level) = self
            .scopes
            .iter()
            .rposition(|scope| scope.contains_key(&name))
        else {
            self.cx.push(
                ident.span(),
                format!("cannot assign to `{name}`: it is not a local of this function"),
            );
            return;
        };
        match self.scopes[level].get(&name).copied() {
            Some(Binding::Index(_)) => {
                self.cx.push(
                    ident.span(),
                    format!("cannot assign to the loop index `{name}`"),
                );
                return;
            }
            Some(Binding::Node(old))
                if level == 0 && self.nodes[old.0].kind_is_param_named(&name) =>
            {
                self.cx.push(
                    ident.span(),
                    format!(
                        "a differentiable function cannot assign to its parameter `{name}`: bind a \
                         new value instead (`let {name} = …;`, or `let mut y = {name};` then `y = …`)"
                    ),
                );
                return;
            }
            _ => {}
        }
        if self.nodes[id.0].name.is_none() {
            self.name_node(id, &name);
        }
        self.scopes[level].insert(name, Binding::Node(id));
    }

    // for i in 0..N { … }   for _ in (0..=N).rev() { … }
    fn lower_for(&mut self, f: &syn::ExprForLoop) {
        if let Some(label) = &f.label {
            self.cx.push_spanned(
                label,
                "loop labels are not supported: `break` and `continue` cannot be unrolled",
            );
            return;
        }
        let var = match &*f.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => Some(pi.ident.clone()),
            Pat::Wild(_) => None,
            other => {
                self.cx
                    .push_spanned(other, "the loop variable must be a name or `_`");
                return;
            }
        };
        let Some(indices) = self.eval_range(&f.expr) else {
            self.cx.push_spanned(
                &f.expr,
                "a loop in a differentiable function is unrolled when the macro runs, so its range \
                 must be known then: `0..N`, `0..=N` or `(0..N).rev()` with integer literals, \
                 `const`s declared in this function, or the indices of enclosing loops",
            );
            return;
        };
        if indices.len() > MAX_NODES {
            self.cx.push_spanned(
                &f.expr,
                format!(
                    "this loop runs {} times; a tape holds at most {MAX_NODES} nodes",
                    indices.len()
                ),
            );
            return;
        }
        let muted = self.cx.muted;
        for (k, i) in indices.into_iter().enumerate() {
            if self.too_big {
                break;
            }
            // Every iteration lowers the same code: only the first reports errors.
            self.cx.muted = muted || k > 0;
            let mut scope = HashMap::new();
            if let Some(var) = &var {
                scope.insert(var.to_string(), Binding::Index(i));
            }
            self.scopes.push(scope);
            self.iterations.push(i);
            let _ = self.lower_block(
                &f.body.stmts,
                f.body.brace_token.span.close(),
                Mode::Statements,
            );
            self.iterations.pop();
            self.scopes.pop();
        }
        self.cx.muted = muted;
    }

    /// The indices a `for` loop visits, if its range is known now.
    fn eval_range(&self, expr: &Expr) -> Option<Vec<i128>> {
        match expr {
            Expr::Paren(p) => self.eval_range(&p.expr),
            Expr::Group(g) => self.eval_range(&g.expr),
            Expr::MethodCall(m) if m.method == "rev" && m.args.is_empty() => {
                let mut indices = self.eval_range(&m.receiver)?;
                indices.reverse();
                Some(indices)
            }
            Expr::Range(r) => {
                let start = self.eval_int(r.start.as_deref()?)?;
                let end = self.eval_int(r.end.as_deref()?)?;
                let end = match r.limits {
                    syn::RangeLimits::HalfOpen(_) => end,
                    syn::RangeLimits::Closed(_) => end.checked_add(1)?,
                };
                let count = usize::try_from(end.saturating_sub(start)).ok()?;
                if count > 10 * MAX_NODES {
                    return None;
                }
                Some((start..end).collect())
            }
            _ => None,
        }
    }

    /// The value of an integer expression known at expansion time.
    fn eval_int(&self, expr: &Expr) -> Option<i128> {
        match expr {
            Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Int(i),
                ..
            }) => i.base10_parse().ok(),
            Expr::Paren(p) => self.eval_int(&p.expr),
            Expr::Group(g) => self.eval_int(&g.expr),
            Expr::Cast(c) => self.eval_int(&c.expr),
            Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => self.eval_int(&u.expr)?.checked_neg(),
            Expr::Binary(b) => {
                let (l, r) = (self.eval_int(&b.left)?, self.eval_int(&b.right)?);
                match b.op {
                    BinOp::Add(_) => l.checked_add(r),
                    BinOp::Sub(_) => l.checked_sub(r),
                    BinOp::Mul(_) => l.checked_mul(r),
                    BinOp::Div(_) => l.checked_div(r),
                    BinOp::Rem(_) => l.checked_rem(r),
                    _ => None,
                }
            }
            Expr::Path(p) => {
                let ident = p.path.get_ident()?;
                match self.lookup(&ident.to_string()) {
                    Some(Binding::Index(i)) => Some(i),
                    Some(Binding::Node(_)) => None,
                    None => self.consts.get(&ident.to_string()).copied(),
                }
            }
            _ => None,
        }
    }

    // if c { a } else if d { b } else { e }
    fn lower_if(&mut self, ei: &syn::ExprIf, want_value: bool) -> Option<NodeId> {
        let cond = self.lower_condition(&ei.cond)?;
        let before = self.scopes.clone();
        let mode = if want_value {
            Mode::Value
        } else {
            Mode::Statements
        };

        self.guard.push((cond, true));
        self.scopes.push(HashMap::new());
        let then_value = self.lower_block(
            &ei.then_branch.stmts,
            ei.then_branch.brace_token.span.close(),
            mode,
        );
        self.scopes.pop();
        self.guard.pop();
        let after_then = std::mem::replace(&mut self.scopes, before.clone());

        self.guard.push((cond, false));
        let else_value = match &ei.else_branch {
            Some((_, e)) => match &**e {
                Expr::Block(b) => {
                    self.scopes.push(HashMap::new());
                    let v =
                        self.lower_block(&b.block.stmts, b.block.brace_token.span.close(), mode);
                    self.scopes.pop();
                    v
                }
                Expr::If(inner) => self.lower_if(inner, want_value),
                other => self.lower_expr(other),
            },
            None => {
                if want_value {
                    self.cx
                        .push_spanned(ei, "an `if` that gives a value needs an `else`");
                }
                None
            }
        };
        self.guard.pop();
        let after_else = std::mem::replace(&mut self.scopes, before.clone());

        // Every variable an arm reassigned takes its arm's value: a `select` per variable.
        for (level, scope) in before.iter().enumerate() {
            let mut names: Vec<&String> = scope.keys().collect();
            names.sort();
            for name in names {
                let original = scope.get(name).copied();
                let then_b = after_then.get(level).and_then(|s| s.get(name)).copied();
                let else_b = after_else.get(level).and_then(|s| s.get(name)).copied();
                if let (Some(Binding::Node(t)), Some(Binding::Node(e))) = (then_b, else_b) {
                    if then_b != original || else_b != original {
                        let merged = self.select(cond, t, e, ei.if_token.span());
                        self.name_node(merged, name);
                        self.scopes[level].insert(name.clone(), Binding::Node(merged));
                    }
                }
            }
        }
        if !want_value {
            return None;
        }
        Some(self.select(cond, then_value?, else_value?, ei.span()))
    }

    fn select(&mut self, cond: NodeId, then: NodeId, other: NodeId, span: Span) -> NodeId {
        if then == other {
            return then;
        }
        let requires_grad = self.nodes[then.0].requires_grad || self.nodes[other.0].requires_grad;
        self.push_node(NodeKind::Select { cond, then, other }, span, requires_grad)
    }

    /// A branch condition: a `cond` node, evaluated where the current guard holds.
    fn lower_condition(&mut self, expr: &Expr) -> Option<NodeId> {
        let captures = self.captures(expr, Context::Condition)?;
        let verbatim = Verbatim {
            tokens: expr.to_token_stream(),
            captures,
            float_literal: false,
            known: None,
        };
        Some(self.push_node(NodeKind::Cond(verbatim), expr.span(), false))
    }

    fn lower_expr(&mut self, expr: &Expr) -> Option<NodeId> {
        if self.too_big {
            return None;
        }
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
                UnOp::Neg(_) => self.lower_operator(ops::by_unary("-"), &[&u.expr], expr.span()),
                UnOp::Deref(_) => self.lower_expr(&u.expr),
                _ => self.unsupported(
                    expr,
                    &format!("operator `{}` is not differentiable; supported operators: {}", u.op.to_token_stream(), ops::operator_names()),
                ),
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
                    if let Some(id) = self.resolve(ident) {
                        return Some(id);
                    }
                }
                Some(self.push_const(expr, Vec::new()))
            }
            // x.exp(), x.dot(&w), x.mean().unwrap()
            Expr::MethodCall(m) => self.lower_method(m, expr),
            // tanh(&z), tape::mse(&p, y), layer(&w, x), F::from_f64(0.5)
            Expr::Call(c) => self.lower_call(c, expr),
            // { let t = …; t * 2.0 }
            Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => {
                self.scopes.push(HashMap::new());
                let out = self.lower_block(&b.block.stmts, b.block.brace_token.span.close(), Mode::Value);
                self.scopes.pop();
                out
            }
            // if c { a } else { b }
            Expr::If(ei) => self.lower_if(ei, true),
            // n as f64 (of a non-differentiable value)
            Expr::Cast(_) => {
                let captures = self.captures(expr, Context::Constant("a cast"))?;
                Some(self.push_const(expr, captures))
            }
            Expr::Match(_) => self.unsupported(expr, "`match` is not supported in a differentiable function: use `if`/`else if`/`else`"),
            Expr::While(_) | Expr::Loop(_) => self.unsupported(
                expr,
                "`while` and `loop` are not supported: a differentiable loop must have a trip count known \
                 when the macro runs, `for i in 0..N`",
            ),
            Expr::ForLoop(_) => self.unsupported(expr, "a `for` loop has no value: write it as a statement"),
            Expr::Closure(_) => self.unsupported(expr, "closures are not supported in a differentiable function: use the prelude's op functions"),
            Expr::Try(_) => self.unsupported(expr, "`?` is not supported in a differentiable function: the generated `_grad` returns errors itself"),
            Expr::Unsafe(_) => self.unsupported(expr, "`unsafe` is not supported in a differentiable function"),
            Expr::Assign(_) => self.unsupported(expr, "an assignment has no value: write it as a statement, `y = …;`"),
            Expr::Break(_) | Expr::Continue(_) => self.unsupported(expr, "`break` and `continue` are not supported: loops are unrolled"),
            // x[i] (a vector, a constant index)
            Expr::Index(ix) => match ops::by_index() {
                Some(op) => self.lower_op(op, &[&ix.expr], &[&ix.index], expr.span()),
                None => self.unsupported(expr, "indexing is missing from the op table"),
            },
            Expr::Field(_) => self.unsupported(expr, "field access is not supported: pass the value as a parameter"),
            Expr::Return(_) => self.unsupported(expr, "`return` is only supported as the last statement"),
            Expr::Macro(_) => self.unsupported(expr, "macros are not supported inside a differentiable function"),
            _ => self.unsupported(
                expr,
                "this expression is not supported in a differentiable function: use `let` bindings, \
                 operators `+ - * /`, the prelude's op functions, ndarray methods, `if` and `for`",
            ),
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
            known: None,
        };
        self.push_node(NodeKind::Const(verbatim), expr.span(), false)
    }

    fn lower_binary(&mut self, b: &syn::ExprBinary, expr: &Expr) -> Option<NodeId> {
        let symbol = match b.op {
            BinOp::Add(_) => "+",
            BinOp::Sub(_) => "-",
            BinOp::Mul(_) => "*",
            BinOp::Div(_) => "/",
            _ if compound_symbol(&b.op).is_some() => {
                return self.unsupported(
                    expr,
                    "a compound assignment has no value: write it as a statement, `y += …;`",
                );
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
        self.lower_operator(ops::by_binary(symbol), &[&b.left, &b.right], expr.span())
    }

    fn lower_operator(
        &mut self,
        op: Option<&'static OpSpec>,
        operands: &[&Expr],
        span: Span,
    ) -> Option<NodeId> {
        let Some(op) = op else {
            self.cx.push(span, "operator missing from the op table");
            return None;
        };
        self.lower_op(op, operands, &[], span)
    }

    // x.exp(), x.dot(&w), x.sum_axis(Axis(1)), x.mean().unwrap(), x.clone(), x.len()
    fn lower_method(&mut self, m: &syn::ExprMethodCall, expr: &Expr) -> Option<NodeId> {
        let name = m.method.to_string();
        if ops::UNWRAP_METHODS.contains(&name.as_str()) {
            return self.lower_unwrap(m, &name);
        }
        if ops::IDENTITY_METHODS.contains(&name.as_str())
            && m.args.is_empty()
            && m.turbofish.is_none()
        {
            // `xs.row(t).to_owned()` of a constant stays one constant, of the type it has.
            if !matches!(strip_parens(&m.receiver), Expr::Path(_)) {
                if let Some(captures) = self.constant_captures(expr) {
                    return Some(self.push_const(expr, captures));
                }
            }
            return self.lower_expr(&m.receiver);
        }
        if let Some(op) = ops::by_method(&name).filter(|_| m.turbofish.is_none()) {
            let args: Vec<&Expr> = std::iter::once(&*m.receiver).chain(m.args.iter()).collect();
            return self.lower_op_call(op, &args, m.method.span(), m.span());
        }
        // Any other method of values that need no gradient is a constant: `y.mapv(f)` for
        // a `#[no_grad]` y, `x.len()` for any x.
        if let Some(captures) = self.constant_captures(expr) {
            return Some(self.push_const(expr, captures));
        }
        self.cx.push(
            m.method.span(),
            format!("unsupported method `{name}` on a differentiable value: differentiable code can call {}", ops::method_names()),
        );
        None
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

    // tanh(&z), mse(&h, y), tape::prelude::softmax(&z), nn::layer(&w, x), F::from_f64(0.5)
    fn lower_call(&mut self, c: &syn::ExprCall, expr: &Expr) -> Option<NodeId> {
        if let Some(ident) = function_name(c) {
            if let Some(op) = ops::by_function(&ident.to_string()) {
                let args: Vec<&Expr> = c.args.iter().collect();
                return self.lower_op_call(op, &args, ident.span(), c.span());
            }
        }
        // A call that reads no differentiable value is a constant: `F::from_f64(0.5)`.
        if let Some(captures) = self.constant_captures(expr) {
            return Some(self.push_const(expr, captures));
        }
        let Expr::Path(p) = &*c.func else {
            return self.unsupported(
                expr,
                "only functions called by name can take differentiable arguments",
            );
        };
        if p.qself.is_some() {
            return self.unsupported(
                expr,
                "only functions called by name can take differentiable arguments",
            );
        }
        // A call of another #[differentiable] function: one node whose VJP runs the callee's.
        let mut args = Vec::new();
        for arg in &c.args {
            let by_ref = matches!(strip_parens(arg), Expr::Reference(_));
            args.push(CallArg {
                node: self.lower_expr(arg)?,
                by_ref,
            });
        }
        let requires_grad = args.iter().any(|a| self.nodes[a.node.0].requires_grad);
        Some(self.push_node(
            NodeKind::Call {
                path: p.path.clone(),
                args,
            },
            c.func.span(),
            requires_grad,
        ))
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
        let what = format!("an argument of `{}`", op.name);
        let configs: Vec<Option<Verbatim>> = configs
            .iter()
            .map(|e| {
                let captures = self.captures(e, Context::Constant(&what))?;
                Some(Verbatim {
                    tokens: e.to_token_stream(),
                    captures,
                    float_literal: false,
                    known: self.eval_int(e),
                })
            })
            .collect();
        let args: Vec<NodeId> = args.into_iter().collect::<Option<_>>()?;
        let configs: Vec<Verbatim> = configs.into_iter().collect::<Option<_>>()?;
        let requires_grad = args.iter().any(|a| self.nodes[a.0].requires_grad);
        Some(self.push_node(NodeKind::Op { op, args, configs }, span, requires_grad))
    }

    /// The captures of an expression that reads no differentiable value, or `None` (and no
    /// error) if it reads one.
    fn constant_captures(&mut self, expr: &Expr) -> Option<Vec<Capture>> {
        let mut names = NameCollector::default();
        names.visit_expr(expr);
        let differentiable = names.values.iter().any(|ident| {
            matches!(self.lookup(&ident.to_string()), Some(Binding::Node(id)) if self.nodes[id.0].requires_grad)
        });
        if differentiable {
            None
        } else {
            self.captures(expr, Context::Constant("a constant"))
        }
    }

    /// The function's names an expression reads, each bound to its node; an error where the
    /// context forbids reading a differentiable value.
    fn captures(&mut self, expr: &Expr, context: Context<'_>) -> Option<Vec<Capture>> {
        let mut names = NameCollector::default();
        names.visit_expr(expr);
        let mut captures: Vec<Capture> = Vec::new();
        let mut ok = true;
        let free = names
            .detached
            .iter()
            .map(|i| (i, false))
            .chain(names.values.iter().map(|i| (i, true)));
        let uses: Vec<(Ident, bool)> = free.map(|(i, checked)| (i.clone(), checked)).collect();
        for (ident, checked) in uses {
            let Some(node) = self.resolve(&ident) else {
                continue;
            };
            let forbidden =
                checked && self.nodes[node.0].requires_grad && !matches!(context, Context::Aux);
            if forbidden {
                let message = match context {
                    Context::Condition => format!(
                        "this condition reads `{ident}`, which is differentiable; no derivative flows \
                         through a branch, so test a `#[no_grad]` or integer input, a shape \
                         (`{ident}.len()`), or a forward value made explicitly non-differentiable \
                         with `detach(&{ident})`"
                    ),
                    Context::Constant(what) => format!(
                        "`{ident}` is differentiable, so it cannot be used in {what}, which must be a \
                         constant: a literal, a `const`, a `#[no_grad]` or integer input, or a shape \
                         such as `x.len()`"
                    ),
                    Context::Aux => String::new(),
                };
                self.cx.push(ident.span(), message);
                ok = false;
            } else if !captures.iter().any(|c| c.ident == ident) {
                captures.push(Capture {
                    ident,
                    node,
                    shape_only: false,
                });
            }
        }
        for ident in names.shapes {
            if captures.iter().any(|c| c.ident == ident) {
                continue;
            }
            let Some(node) = self.resolve(&ident) else {
                continue;
            };
            captures.push(Capture {
                ident,
                node,
                shape_only: true,
            });
        }
        ok.then_some(captures)
    }
}

/// `+` for `+=`, and so on.
fn compound_symbol(op: &BinOp) -> Option<&'static str> {
    match op {
        BinOp::AddAssign(_) => Some("+"),
        BinOp::SubAssign(_) => Some("-"),
        BinOp::MulAssign(_) => Some("*"),
        BinOp::DivAssign(_) => Some("/"),
        _ => None,
    }
}

fn strip_parens(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => strip_parens(&p.expr),
        Expr::Group(g) => strip_parens(&g.expr),
        other => other,
    }
}

/// `y` in `y`, `(y)`.
fn bare_path(expr: &Expr) -> Option<&Ident> {
    match strip_parens(expr) {
        Expr::Path(p) if p.qself.is_none() => p.path.get_ident(),
        _ => None,
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

/// Collects the single names an expression reads: as values (`n` in `n as f64`), only for
/// their shape (`x` in `x.len() as f64`), or inside `detach(…)`.
#[derive(Default)]
struct NameCollector {
    values: Vec<Ident>,
    shapes: Vec<Ident>,
    detached: Vec<Ident>,
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
        if p.qself.is_none() {
            if let Some(ident) = p.path.get_ident() {
                self.values.push(ident.clone());
            }
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

    fn visit_expr_call(&mut self, c: &'ast syn::ExprCall) {
        if function_name(c).is_some_and(|f| ops::DETACH_FUNCTIONS.contains(&f.to_string().as_str()))
        {
            let mut inner = NameCollector::default();
            for arg in &c.args {
                inner.visit_expr(arg);
            }
            self.detached.extend(inner.values);
            self.detached.extend(inner.detached);
            self.shapes.extend(inner.shapes);
        } else {
            syn::visit::visit_expr_call(self, c);
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
                let b = x % 2.0;
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
            errs[1].starts_with("operator `%` is not differentiable"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].starts_with("`while` and `loop` are not supported"),
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
            async fn f<T, U>(&self, x: &mut Array1<f64>, y: Vec<f64>) -> Array1<f64> { x.sum() }
        });
        assert_eq!(errs.len(), 5, "{errs:?}");
        let errs = errors(parse_quote! { fn f(x: f32) -> f64 { x } });
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("one type"), "{errs:?}");
    }

    #[test]
    fn loops_unroll_with_iteration_names() {
        let tape = lower(parse_quote! {
            fn f(x: f64) -> f64 {
                const N: usize = 2;
                let mut y = x;
                for i in 0..=N { y = y * x; }
                y
            }
        })
        .unwrap();
        let names: Vec<_> = tape.nodes.iter().filter_map(|n| n.name.clone()).collect();
        assert_eq!(names, ["x", "y#0", "y#1", "y#2"]);
        assert_eq!(tape.items.len(), 1);
    }

    #[test]
    fn a_tape_too_large_is_an_error() {
        let errs = errors(parse_quote! {
            fn f(x: f64) -> f64 {
                let mut y = x;
                for _ in 0..15000 { y = y * x; y = y + x; }
                y
            }
        });
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("passes 20000 nodes"), "{errs:?}");
    }

    #[test]
    fn branch_arms_are_guarded_and_merged() {
        let tape = lower(parse_quote! {
            fn f(x: f64, n: i32) -> f64 {
                let mut y = x;
                if n > 0 { y = y.exp(); }
                y
            }
        })
        .unwrap();
        let ops: Vec<_> = tape.nodes.iter().map(|n| n.op_name()).collect();
        assert_eq!(ops, ["input", "input", "cond", "exp", "select"]);
        assert_eq!(tape.nodes[3].guard, [(NodeId(2), true)]);
        assert_eq!(tape.nodes[4].parents(), [NodeId(3), NodeId(0)]);
        assert_eq!(tape.output, NodeId(4));
    }

    #[test]
    fn control_flow_errors() {
        let errs = errors(parse_quote! {
            fn f(x: f64, n: i32) -> f64 {
                let a = if n > 0 { x };
                for i in 0..3 { i = 2; }
                for _ in 0..2 { return x; }
                x
            }
        });
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(errs[0].contains("needs an `else`"), "{errs:?}");
        assert!(errs[1].contains("loop index"), "{errs:?}");
        assert!(errs[2].contains("`return` is only supported"), "{errs:?}");
    }
}
