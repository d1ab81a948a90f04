//! [`Tape`]: the backward family over a recorded static tape.
//!
//! A generated `FTape` supplies the static tape (`NodeInfo` rows), the recorded forward
//! values, and [`Tape::vjp`]: one generated block per node that sends the node's VJP
//! contributions to its parents. Every method of the family is built on that one method and
//! runs it in reverse id order (n−1 … 0); none builds a graph at run time. Every precondition
//! is checked, and a violation is an `Err(TapeError)`, never a panic.

use crate::accumulate::{Acc, add_grad_all, add_grad_dense, sparse_from_dense};
use crate::any_tensor::AnyTensor;
use crate::error::{NodeLabel, Result, TapeError};
use crate::float::Float;
use crate::node::NodeInfo;
use crate::tensor::Value;
use num_traits::One;
use std::collections::HashMap;

/// Where a node's VJP sends its contributions: one call per parent that requires a gradient.
pub trait Accumulate<F: Float> {
    /// Adds `contribution` to node `id`'s gradient.
    ///
    /// # Errors
    /// As [`add_grad_dense`]: an id that is not a node, a contribution of the wrong shape.
    fn add(&mut self, id: usize, contribution: AnyTensor<F>) -> Result<()>;
}

/// A dense array of optional gradients (`None` = not reached), with the tape it belongs to.
struct Dense<'a, F> {
    grads: &'a mut [Option<AnyTensor<F>>],
    nodes: &'a [NodeInfo],
    values: &'a [Option<AnyTensor<F>>],
}

impl<F: Float> Accumulate<F> for Dense<'_, F> {
    fn add(&mut self, id: usize, contribution: AnyTensor<F>) -> Result<()> {
        add_grad_dense(self.grads, self.nodes, self.values, id, contribution)
    }
}

/// A total array: every node has an entry.
struct Total<'a, F> {
    grads: &'a mut [AnyTensor<F>],
    nodes: &'a [NodeInfo],
    values: &'a [Option<AnyTensor<F>>],
}

impl<F: Float> Accumulate<F> for Total<'_, F> {
    fn add(&mut self, id: usize, contribution: AnyTensor<F>) -> Result<()> {
        add_grad_all(self.grads, self.nodes, self.values, id, contribution)
    }
}

fn label(nodes: &[NodeInfo], id: usize) -> NodeLabel {
    NodeLabel {
        id,
        name: nodes.get(id).and_then(|n| n.name),
    }
}

/// The backward family of a recorded static tape. Implemented by every `FTape` that
/// `#[differentiable]` generates; the provided methods are the family.
///
/// | method | result |
/// |---|---|
/// | [`backward_dense`](Tape::backward_dense) | one `Option` per node: `Some` iff reached |
/// | [`backward_dense_all`](Tape::backward_dense_all) | the same, zeros where unreached |
/// | [`backward_dense_from`](Tape::backward_dense_from) | from an explicit total array, every requires-grad VJP |
/// | [`backward_dense_from_loop`](Tape::backward_dense_from_loop) | the same over the first `n` nodes |
/// | [`backward_dense_from_step`](Tape::backward_dense_from_step) | one reverse step |
/// | [`backward_sparse`](Tape::backward_sparse) | the reached nodes by id |
/// | [`backward`](Tape::backward) | `backward_sparse` from the output with seed 1 |
/// | [`value`](Tape::value) | a node's recorded value |
/// | [`to_dot`](Tape::to_dot), [`to_dot_with`](Tape::to_dot_with) | the tape as Graphviz DOT, with shapes and cotangent norms |
pub trait Tape {
    /// The element type, `f32` or `f64`.
    type Elem: Float;

    /// The static tape: one row per node id.
    fn nodes(&self) -> &'static [NodeInfo];

    /// The recorded forward values, one per node id; `None` for a node in an arm of a branch
    /// that did not run.
    fn values(&self) -> &[Option<AnyTensor<Self::Elem>>];

    /// The id of the function's output node.
    fn output_id(&self) -> usize;

    /// Runs node `id`'s VJP with cotangent `g` (of the node's shape), sending one
    /// contribution to `acc` for each parent that requires a gradient. Nothing for parameters,
    /// constants and nodes that do not require a gradient. Generated code: one block per node.
    ///
    /// # Errors
    /// A kernel's error, or the accumulator's.
    fn vjp<A: Accumulate<Self::Elem>>(
        &self,
        id: usize,
        g: &AnyTensor<Self::Elem>,
        acc: &mut A,
    ) -> Result<()>;

    /// The recorded forward value of node `id`.
    ///
    /// # Errors
    /// [`TapeError::InvalidNodeId`] when `id` is not a node, [`TapeError::NotEvaluated`] when
    /// it is in an arm of a branch that did not run.
    fn value(&self, id: usize) -> Result<AnyTensor<Self::Elem>> {
        match self.values().get(id) {
            None => Err(TapeError::InvalidNodeId {
                id,
                len: self.values().len(),
            }),
            Some(None) => Err(TapeError::NotEvaluated {
                node: label(self.nodes(), id),
            }),
            Some(Some(value)) => Ok(value.clone()),
        }
    }

    /// A total array of zeros, one entry of each node's shape (a scalar zero for a node that
    /// was not evaluated): the starting point for [`backward_dense_from`](Tape::backward_dense_from).
    fn zero_grads(&self) -> Vec<AnyTensor<Self::Elem>> {
        self.values()
            .iter()
            .map(|v| AnyTensor::zeros(v.as_ref().map_or(&[], |v| v.shape())))
            .collect()
    }

    /// Reverse mode from node `out_id` seeded with `seed`: `Some(g)` for every reached node
    /// (the output, holding the seed, and every node that requires a gradient and received at
    /// least one contribution), contributions summed; `None` elsewhere.
    ///
    /// # Errors
    /// [`TapeError::InvalidOutputId`], [`TapeError::SeedShape`], or a kernel's error.
    fn backward_dense(
        &self,
        out_id: usize,
        seed: AnyTensor<Self::Elem>,
    ) -> Result<Vec<Option<AnyTensor<Self::Elem>>>> {
        let (nodes, values) = (self.nodes(), self.values());
        let Some(out) = values.get(out_id).filter(|_| out_id < nodes.len()) else {
            return Err(TapeError::InvalidOutputId {
                id: out_id,
                len: nodes.len(),
            });
        };
        let Some(out) = out else {
            return Err(TapeError::NotEvaluated {
                node: label(nodes, out_id),
            });
        };
        if seed.shape() != out.shape() {
            return Err(TapeError::SeedShape {
                node: label(nodes, out_id),
                op: nodes[out_id].op,
                expected: out.shape().to_vec(),
                got: seed.shape().to_vec(),
            });
        }
        let mut grads = vec![None; nodes.len()];
        grads[out_id] = Some(seed);
        for id in (0..=out_id).rev() {
            if !nodes[id].requires_grad {
                continue;
            }
            // A node's VJP only writes to smaller ids, so its own slot can be lent out.
            let Some(g) = grads[id].take() else { continue };
            let result = self.vjp(
                id,
                &g,
                &mut Dense {
                    grads: &mut grads,
                    nodes,
                    values,
                },
            );
            grads[id] = Some(g);
            result?;
        }
        Ok(grads)
    }

    /// [`backward_dense`](Tape::backward_dense), then zeros of the node's shape in every
    /// unreached slot (a scalar zero for a node that was not evaluated). Unreached VJPs never
    /// run, so an unused `1/x` at `x = 0` cannot put a NaN into any gradient.
    ///
    /// # Errors
    /// As [`backward_dense`](Tape::backward_dense).
    fn backward_dense_all(
        &self,
        out_id: usize,
        seed: AnyTensor<Self::Elem>,
    ) -> Result<Vec<AnyTensor<Self::Elem>>> {
        let dense = self.backward_dense(out_id, seed)?;
        let values = self.values();
        Ok(dense
            .into_iter()
            .zip(values)
            .map(|(g, v)| {
                g.unwrap_or_else(|| AnyTensor::zeros(v.as_ref().map_or(&[], |v| v.shape())))
            })
            .collect())
    }

    /// Reverse mode from an explicit total array (several seeded outputs, custom cotangents):
    /// every requires-grad node's VJP runs, from id n−1 down to 0, adding into the array
    /// (except for nodes that were not evaluated, whose entries are left as given).
    ///
    /// # Errors
    /// [`TapeError::InitialLength`], [`TapeError::GradShape`], or a kernel's error.
    fn backward_dense_from(
        &self,
        grads0: Vec<AnyTensor<Self::Elem>>,
    ) -> Result<Vec<AnyTensor<Self::Elem>>> {
        let n = self.nodes().len();
        self.backward_dense_from_loop(n, grads0)
    }

    /// [`backward_dense_from`](Tape::backward_dense_from) over the first `n` nodes only:
    /// ids n−1 … 0; entries from `n` on are returned as given.
    ///
    /// # Errors
    /// [`TapeError::InvalidNodeId`] when `n` exceeds the node count, otherwise as
    /// [`backward_dense_from`](Tape::backward_dense_from).
    fn backward_dense_from_loop(
        &self,
        n: usize,
        acc: Vec<AnyTensor<Self::Elem>>,
    ) -> Result<Vec<AnyTensor<Self::Elem>>> {
        let nodes = self.nodes();
        if n > nodes.len() {
            return Err(TapeError::InvalidNodeId {
                id: n,
                len: nodes.len(),
            });
        }
        let mut acc = acc;
        check_total(nodes, self.values(), &acc)?;
        for id in (0..n).rev() {
            step(self, &mut acc, id)?;
        }
        Ok(acc)
    }

    /// One reverse step on a total array: node `id`'s VJP, with `acc[id]` as its cotangent,
    /// added into its parents' entries (nothing if the node does not require a gradient).
    ///
    /// # Errors
    /// [`TapeError::InvalidNodeId`], [`TapeError::InitialLength`], [`TapeError::GradShape`],
    /// or a kernel's error.
    fn backward_dense_from_step(
        &self,
        acc: &mut Vec<AnyTensor<Self::Elem>>,
        id: usize,
    ) -> Result<()> {
        let nodes = self.nodes();
        if id >= nodes.len() {
            return Err(TapeError::InvalidNodeId {
                id,
                len: nodes.len(),
            });
        }
        check_total(nodes, self.values(), acc)?;
        step(self, acc, id)
    }

    /// The reached nodes of [`backward_dense`](Tape::backward_dense), by id.
    ///
    /// # Errors
    /// As [`backward_dense`](Tape::backward_dense).
    fn backward_sparse(
        &self,
        out_id: usize,
        seed: AnyTensor<Self::Elem>,
    ) -> Result<HashMap<usize, AnyTensor<Self::Elem>>> {
        Ok(sparse_from_dense(self.backward_dense(out_id, seed)?))
    }

    /// [`backward_sparse`](Tape::backward_sparse) from the function's output with seed 1
    /// (PyTorch's `loss.backward()`).
    ///
    /// # Errors
    /// [`TapeError::SeedShape`] for a non-scalar output, or a kernel's error.
    fn backward(&self) -> Result<HashMap<usize, AnyTensor<Self::Elem>>> {
        self.backward_sparse(self.output_id(), AnyTensor::scalar(Self::Elem::one()))
    }

    /// The static tape as a Graphviz DOT graph, each node labeled with its id, name, op and
    /// the shape of its recorded value ([`graphviz::to_dot_annotated`](crate::graphviz::to_dot_annotated)).
    /// Render with `dot -Tsvg tape.dot -o tape.svg`.
    fn to_dot(&self) -> String {
        crate::graphviz::to_dot_annotated(self.nodes(), self.output_id(), self.values(), &[])
    }

    /// [`to_dot`](Tape::to_dot), each node labeled as well with the norm of its cotangent from
    /// a backward pass (`—` where the pass did not reach):
    /// `tape.to_dot_with(&tape.backward_dense(out, seed)?)`.
    fn to_dot_with(&self, cotangents: &[Option<AnyTensor<Self::Elem>>]) -> String {
        crate::graphviz::to_dot_annotated(self.nodes(), self.output_id(), self.values(), cotangents)
    }
}

/// Checks a total array's length and every entry's shape.
fn check_total<F: Float>(
    nodes: &[NodeInfo],
    values: &[Option<AnyTensor<F>>],
    acc: &[AnyTensor<F>],
) -> Result<()> {
    if acc.len() != nodes.len() {
        return Err(TapeError::InitialLength {
            expected: nodes.len(),
            got: acc.len(),
        });
    }
    for (id, ((g, v), node)) in acc.iter().zip(values).zip(nodes).enumerate() {
        let Some(v) = v else { continue };
        if g.shape() != v.shape() {
            return Err(TapeError::GradShape {
                node: label(nodes, id),
                op: node.op,
                expected: v.shape().to_vec(),
                got: g.shape().to_vec(),
            });
        }
    }
    Ok(())
}

/// Node `id`'s VJP on a checked total array.
fn step<T: Tape + ?Sized>(tape: &T, acc: &mut [AnyTensor<T::Elem>], id: usize) -> Result<()> {
    let (nodes, values) = (tape.nodes(), tape.values());
    if !nodes[id].requires_grad || values[id].is_none() {
        return Ok(());
    }
    let g = std::mem::replace(&mut acc[id], AnyTensor::zeros(&[]));
    let result = tape.vjp(
        id,
        &g,
        &mut Total {
            grads: acc,
            nodes,
            values,
        },
    );
    acc[id] = g;
    result
}

/// The VJP of a call to another differentiable function, on recorded tapes: the callee's
/// tape is swept from its output seeded with `g`, and what reaches its `i`-th parameter goes to
/// `args[i]`.
///
/// # Errors
/// [`TapeError::NotEvaluated`] when the call did not run, or the callee's errors.
pub fn call_vjp<T: Tape, A: Accumulate<T::Elem>>(
    callee: Option<&T>,
    g: &AnyTensor<T::Elem>,
    args: &[usize],
    acc: &mut A,
) -> Result<()> {
    let Some(callee) = callee else {
        return Err(TapeError::NotEvaluated {
            node: NodeLabel {
                id: usize::MAX,
                name: None,
            },
        });
    };
    let grads = callee.backward_dense(callee.output_id(), g.clone())?;
    for (&parent, grad) in args.iter().zip(grads) {
        if let Some(grad) = grad {
            acc.add(parent, grad)?;
        }
    }
    Ok(())
}

/// The VJP of an `if`'s value on a recorded tape: `g` goes to `then` if the recorded
/// condition holds, else to `other`.
///
/// # Errors
/// As [`Accumulate::add`].
pub fn select_any_vjp<F: Float, A: Accumulate<F>>(
    g: &AnyTensor<F>,
    cond: &AnyTensor<F>,
    then: usize,
    other: usize,
    acc: &mut A,
) -> Result<()> {
    let taken = cond.to_scalar().is_some_and(|c| c != F::zero());
    acc.add(if taken { then } else { other }, g.clone())
}

/// Puts node `id`'s entry of a [`backward_dense`](Tape::backward_dense) (if it has one) into
/// `acc`, as the parameter's own type: how a long function's `_vjp` hands its recorded
/// tape's gradients to its parameters.
///
/// # Errors
/// [`TapeError::GradShape`] when the gradient's rank is not the parameter's, or the
/// accumulator's error.
pub fn put_recorded<V: Value>(
    nodes: &[NodeInfo],
    grads: &mut [Option<AnyTensor<V::Elem>>],
    id: usize,
    acc: Acc<'_, V>,
) -> Result<()> {
    match grads.get_mut(id).and_then(Option::take) {
        Some(g) => acc.put(typed(nodes, id, g)?),
        None => Ok(()),
    }
}

/// A recorded value as its static type (a scalar from a 0-d tensor, an array of `V`'s rank).
///
/// # Errors
/// [`TapeError::Rank`] when the ranks differ.
pub fn typed<V: Value>(nodes: &[NodeInfo], id: usize, value: AnyTensor<V::Elem>) -> Result<V> {
    let shape = value.shape().to_vec();
    match value.into_array().into_dimensionality::<V::Dim>() {
        Ok(array) => Ok(V::from_array(array)),
        Err(_) => Err(TapeError::Rank {
            op: nodes.get(id).map_or("?", |n| n.op),
            what: "a recorded value has the rank of its static type",
            shape,
            node: Some(label(nodes, id)),
        }),
    }
}
