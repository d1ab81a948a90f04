//! The VJP of a recorded op node, chosen at run time by the op's name.
//!
//! A recorded tape (`FTape`) holds every value as an [`AnyTensor`] (shape-erased), so one
//! function here serves every op node of every recorded tape: it looks the node up in the
//! static tape (`NODES`), reads its operands and output from the recorded values, calls the op's
//! VJP (the same kernel `f_grad` calls, at `ArrayD`) and sends each operand's contribution to
//! the accumulator. Generated code then needs no per-node VJP code for its recorded tape, which
//! keeps the compile time of large functions down; the recorded path is the one for inspecting
//! a backward pass, where a match on a name per node costs nothing measurable.

use crate::accumulate::Acc;
use crate::any_tensor::{AnyTensor, evaluated, scalar_of};
use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::node::NodeInfo;
use crate::ops::{arith, compare, linalg, loss, reduce, softmax, unary};
use crate::tape::Accumulate;
use ndarray::{ArrayD, Axis};

/// A constant argument of an op as `record` kept it (the exponent of `powi`, the axis of
/// `sum_axis`, …).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Config<F> {
    /// An `i32` (`powi`'s exponent).
    I32(i32),
    /// A float (`powf`'s exponent, `clamp`'s bounds).
    Elem(F),
    /// An axis (`sum_axis`, `mean_axis`).
    Axis(Axis),
    /// A `usize` (the index of `x[i]`).
    Usize(usize),
}

/// Every node's constant arguments, from those of the nodes that have some.
pub fn dense_configs<F>(len: usize, sparse: Vec<(usize, Vec<Config<F>>)>) -> Vec<Vec<Config<F>>> {
    let mut dense: Vec<Vec<Config<F>>> = (0..len).map(|_| Vec::new()).collect();
    for (id, configs) in sparse {
        if let Some(slot) = dense.get_mut(id) {
            *slot = configs;
        }
    }
    dense
}

/// Node `id`'s VJP on the recorded `values` with cotangent `g`, each wanted operand's
/// contribution sent to `acc`. Nodes that are not ops (parameters, constants) have none.
///
/// # Errors
/// What the op's VJP reports (shapes, a missing config), named after the node; a value that was
/// not recorded; an op this function does not know.
pub fn op_vjp<F: Float, A: Accumulate<F>>(
    nodes: &[NodeInfo],
    values: &[Option<AnyTensor<F>>],
    configs: &[Vec<Config<F>>],
    id: usize,
    g: &AnyTensor<F>,
    acc: &mut A,
) -> Result<()> {
    let Some(node) = nodes.get(id) else {
        return Ok(());
    };
    let at = |e: TapeError| e.at_node(node.id, node.name);
    dispatch(nodes, values, configs, node, g, acc).map_err(at)
}

fn dispatch<F: Float, A: Accumulate<F>>(
    nodes: &[NodeInfo],
    values: &[Option<AnyTensor<F>>],
    configs: &[Vec<Config<F>>],
    node: &NodeInfo,
    g: &AnyTensor<F>,
    acc: &mut A,
) -> Result<()> {
    if !node.requires_grad || matches!(node.op, "input" | "const" | "cond") {
        return Ok(());
    }
    let operand = |k: usize| -> Result<&ArrayD<F>> {
        let parent = node.parents.get(k).copied().unwrap_or(usize::MAX);
        evaluated(values, parent).map(AnyTensor::as_array)
    };
    let wanted = |k: usize| {
        node.parents
            .get(k)
            .and_then(|p| nodes.get(*p))
            .is_some_and(|p| p.requires_grad)
    };
    let config = |k: usize| -> Result<Config<F>> {
        configs
            .get(node.id)
            .and_then(|c| c.get(k))
            .copied()
            .ok_or(TapeError::NotEvaluated {
                node: crate::error::NodeLabel {
                    id: node.id,
                    name: node.name,
                },
            })
    };
    let y = evaluated(values, node.id)?;
    let mut d: [Option<ArrayD<F>>; 2] = [None, None];
    {
        let [d0, d1] = &mut d;
        let acc0 = if wanted(0) { Acc::to(d0) } else { Acc::skip() };
        let acc1 = if wanted(1) { Acc::to(d1) } else { Acc::skip() };
        let gt = || g.as_array().clone();
        let gs = || scalar_of(node.op, g);
        let ys = || scalar_of(node.op, y);
        let yt = y.as_array();
        // `(g, a, b, y, da, db)` and `(g, x, y, dx)`, the kernels' own signatures.
        macro_rules! binary {
            ($f:path) => {
                $f(gt(), operand(0)?, operand(1)?, yt, acc0, acc1)?
            };
        }
        macro_rules! unary {
            ($f:path) => {
                $f(gt(), operand(0)?, yt, acc0)?
            };
        }
        match node.op {
            "add" => binary!(arith::add_vjp),
            "sub" => binary!(arith::sub_vjp),
            "mul" => binary!(arith::mul_vjp),
            "div" => binary!(arith::div_vjp),
            "maximum" => binary!(compare::maximum_vjp),
            "minimum" => binary!(compare::minimum_vjp),
            "dot" => binary!(linalg::dot_vjp),
            "neg" => unary!(arith::neg_vjp),
            "exp" => unary!(unary::exp_vjp),
            "ln" => unary!(unary::ln_vjp),
            "sqrt" => unary!(unary::sqrt_vjp),
            "abs" => unary!(unary::abs_vjp),
            "sin" => unary!(unary::sin_vjp),
            "cos" => unary!(unary::cos_vjp),
            "tanh" => unary!(unary::tanh_vjp),
            "sigmoid" => unary!(unary::sigmoid_vjp),
            "relu" => unary!(unary::relu_vjp),
            "softplus" => unary!(unary::softplus_vjp),
            "gelu" => unary!(unary::gelu_vjp),
            "transpose" => unary!(linalg::transpose_vjp),
            "softmax" => unary!(softmax::softmax_vjp),
            "log_softmax" => unary!(softmax::log_softmax_vjp),
            "logsumexp" => unary!(softmax::logsumexp_vjp),
            "powi" => match config(0)? {
                Config::I32(n) => unary::powi_vjp(gt(), operand(0)?, yt, n, acc0)?,
                _ => return Err(unexpected(node, "constant arguments")),
            },
            "powf" => match config(0)? {
                Config::Elem(p) => unary::powf_vjp(gt(), operand(0)?, yt, p, acc0)?,
                _ => return Err(unexpected(node, "constant arguments")),
            },
            "clamp" => match (config(0)?, config(1)?) {
                (Config::Elem(lo), Config::Elem(hi)) => {
                    compare::clamp_vjp(gt(), operand(0)?, yt, lo, hi, acc0)?
                }
                _ => return Err(unexpected(node, "constant arguments")),
            },
            "sum_axis" => match config(0)? {
                Config::Axis(axis) => reduce::sum_axis_vjp(gt(), operand(0)?, yt, axis, acc0)?,
                _ => return Err(unexpected(node, "constant arguments")),
            },
            "mean_axis" => match config(0)? {
                Config::Axis(axis) => reduce::mean_axis_vjp(gt(), operand(0)?, yt, axis, acc0)?,
                _ => return Err(unexpected(node, "constant arguments")),
            },
            "sum" => reduce::sum_vjp(gs()?, operand(0)?, &ys()?, acc0)?,
            "mean" => reduce::mean_vjp(gs()?, operand(0)?, &ys()?, acc0)?,
            "index" => match config(0)? {
                Config::Usize(i) => reduce::index_vjp(gs()?, operand(0)?, &ys()?, i, acc0)?,
                _ => return Err(unexpected(node, "constant arguments")),
            },
            "mse" => loss::mse_vjp(gs()?, operand(0)?, operand(1)?, &ys()?, acc0, acc1)?,
            "cross_entropy" => {
                loss::cross_entropy_vjp(gs()?, operand(0)?, operand(1)?, &ys()?, acc0, acc1)?
            }
            _ => return Err(unexpected(node, "op")),
        }
    }
    let [d0, d1] = d;
    for (k, contribution) in [d0, d1].into_iter().enumerate() {
        if let (Some(c), Some(parent)) = (contribution, node.parents.get(k)) {
            acc.add(*parent, AnyTensor::new(c))?;
        }
    }
    Ok(())
}

/// A node this function cannot run: an op it does not know, or constant arguments of the
/// wrong kind (neither happens for a tape the macro generated).
fn unexpected(node: &NodeInfo, what: &str) -> TapeError {
    TapeError::Domain {
        op: node.op,
        what: format!("the recorded tape has no VJP for this node's {what}"),
        node: None,
    }
}
