//! Where VJP contributions go: [`Acc`], one parent's gradient slot.
//!
//! A reverse sweep sends each node's cotangent through its op's VJP to its parents. A parent
//! used several times (a DAG) receives several contributions, which are summed: the first is
//! moved into the empty slot, later ones are added in place, so no zero-filled buffer is ever
//! allocated. A parent that does not require a gradient gets [`Acc::skip`], and its VJP
//! branch is never computed.

use crate::any_tensor::AnyTensor;
use crate::error::{NodeLabel, Result, TapeError};
use crate::float::Float;
use crate::node::NodeInfo;
use crate::tensor::{Tensor, Value};
use std::collections::HashMap;

/// The gradient slot of one parent of a node, handed to the node's VJP.
#[derive(Debug)]
pub struct Acc<'a, T>(Option<&'a mut Option<T>>);

impl<'a, T> Acc<'a, T> {
    /// Accumulate into `slot` (`None` until the first contribution arrives).
    #[inline(always)]
    pub fn to(slot: &'a mut Option<T>) -> Self {
        Acc(Some(slot))
    }

    /// Drop every contribution: the parent does not require a gradient.
    #[inline(always)]
    pub fn skip() -> Self {
        Acc(None)
    }

    /// The slot itself, if a contribution is wanted: for VJPs that edit the total in place.
    #[inline(always)]
    pub fn into_slot(self) -> Option<&'a mut Option<T>> {
        self.0
    }

    /// Whether a contribution is wanted at all; VJPs test this before computing one.
    #[inline(always)]
    pub fn wanted(&self) -> bool {
        self.0.is_some()
    }
}

/// [`Acc::to`] as a free function, which generated code calls for every operand of every VJP:
/// rustc resolves a free function's path faster than an associated function of a generic
/// type (about 2% of checking a 1,000-node function).
#[inline(always)]
pub fn acc_to<T>(slot: &mut Option<T>) -> Acc<'_, T> {
    Acc(Some(slot))
}

/// [`Acc::skip`] as a free function (see [`acc_to`]).
#[inline(always)]
pub fn acc_skip<T>() -> Acc<'static, T> {
    Acc(None)
}

impl<T: Value> Acc<'_, T> {
    /// Adds one contribution: moved into an empty slot, added in place to a filled one.
    ///
    /// # Errors
    /// [`TapeError::ContributionShape`] when the
    /// contribution's shape differs from what the slot already holds.
    #[inline(always)]
    pub fn put(self, contribution: T) -> Result<()> {
        match self.0 {
            None => Ok(()),
            Some(slot) => match slot {
                None => {
                    *slot = Some(contribution);
                    Ok(())
                }
                Some(total) => total.add_assign_same(&contribution),
            },
        }
    }

    /// Adds a contribution computed only if it is wanted.
    ///
    /// # Errors
    /// As [`Acc::put`], and whatever `make` returns.
    #[inline(always)]
    pub fn put_with(self, make: impl FnOnce() -> Result<T>) -> Result<()> {
        if self.wanted() {
            self.put(make()?)
        } else {
            Ok(())
        }
    }
}

/// The value of a node evaluated in an arm of a branch: generated code reads it only where the
/// arm ran.
///
/// # Errors
/// [`TapeError::NotEvaluated`] (without a node; the generated code attaches it) if it did not.
pub fn taken<T>(value: &Option<T>) -> Result<&T> {
    value.as_ref().ok_or(TapeError::NotEvaluated {
        node: NodeLabel {
            id: usize::MAX,
            name: None,
        },
    })
}

/// [`taken`], by value.
///
/// # Errors
/// As [`taken`].
pub fn present<T>(value: Option<T>) -> Result<T> {
    value.ok_or(TapeError::NotEvaluated {
        node: NodeLabel {
            id: usize::MAX,
            name: None,
        },
    })
}

/// The VJP of an `if`'s value: the whole cotangent goes to the arm that ran.
///
/// # Errors
/// As [`Acc::put`].
pub fn select_vjp<T: Value>(g: T, cond: bool, then: Acc<'_, T>, other: Acc<'_, T>) -> Result<()> {
    if cond { then.put(g) } else { other.put(g) }
}

/// An empty gradient slot of the type of `value`'s gradient. Generated code declares every
/// slot with it, so that the compiler knows each slot's type at once instead of inferring it
/// from a use far below (which makes type-checking a long tape quadratic).
pub fn slot<T: Tensor + ?Sized>(_value: &T) -> Option<T::Owned> {
    None
}

/// [`slot`] for a value that exists only where a branch arm ran.
pub fn slot_opt<T: Tensor>(_value: &Option<T>) -> Option<T::Owned> {
    None
}

/// The gradient of a parameter at the end of a sweep: what it received, or zeros of its shape
/// when the output does not depend on it (like JAX).
pub fn grad_or_zeros<T: Value>(slot: Option<T>, like: &T) -> T {
    match slot {
        Some(g) => g,
        None => like.zeros_like(),
    }
}

/// Checks that `id` names a node and that `contribution` has its shape; `false` when the node
/// does not require a gradient (the contribution is then dropped).
fn admit<F: Float>(
    nodes: &[NodeInfo],
    values: &[Option<AnyTensor<F>>],
    slots: usize,
    id: usize,
    contribution: &AnyTensor<F>,
) -> Result<bool> {
    let (Some(node), Some(value)) = (nodes.get(id), values.get(id)) else {
        return Err(TapeError::InvalidNodeId {
            id,
            len: nodes.len().min(values.len()),
        });
    };
    if id >= slots {
        return Err(TapeError::InvalidNodeId { id, len: slots });
    }
    if !node.requires_grad {
        return Ok(false);
    }
    let Some(value) = value else {
        return Err(TapeError::NotEvaluated {
            node: NodeLabel {
                id,
                name: node.name,
            },
        });
    };
    if contribution.shape() != value.shape() {
        return Err(TapeError::ContributionShape {
            op: node.op,
            expected: value.shape().to_vec(),
            got: contribution.shape().to_vec(),
            node: Some(NodeLabel {
                id,
                name: node.name,
            }),
        });
    }
    Ok(true)
}

/// Adds one VJP contribution to node `id`'s slot in a dense array (`None` = not reached yet).
///
/// In order: an `id` that is not a node is an error; a contribution to a node that does not
/// require a gradient is dropped; a node that was not evaluated (in an arm of a branch that
/// did not run) or a contribution whose shape differs from the node's is an error; an empty
/// slot takes the contribution; a filled one adds it.
///
/// # Errors
/// [`TapeError::InvalidNodeId`], [`TapeError::NotEvaluated`],
/// [`TapeError::ContributionShape`].
pub fn add_grad_dense<F: Float>(
    grads: &mut [Option<AnyTensor<F>>],
    nodes: &[NodeInfo],
    values: &[Option<AnyTensor<F>>],
    id: usize,
    contribution: AnyTensor<F>,
) -> Result<()> {
    if !admit(nodes, values, grads.len(), id, &contribution)? {
        return Ok(());
    }
    match &mut grads[id] {
        slot @ None => *slot = Some(contribution),
        Some(total) => total.add_assign(&contribution)?,
    }
    Ok(())
}

/// Adds one VJP contribution to node `id`'s entry of a total array (every entry present).
/// The same checks, in the same order, as [`add_grad_dense`].
///
/// # Errors
/// [`TapeError::InvalidNodeId`], [`TapeError::ContributionShape`].
pub fn add_grad_all<F: Float>(
    grads: &mut [AnyTensor<F>],
    nodes: &[NodeInfo],
    values: &[Option<AnyTensor<F>>],
    id: usize,
    contribution: AnyTensor<F>,
) -> Result<()> {
    if !admit(nodes, values, grads.len(), id, &contribution)? {
        return Ok(());
    }
    grads[id].add_assign(&contribution)?;
    Ok(())
}

/// The reached entries of a dense array, by node id.
pub fn sparse_from_dense<F: Float>(
    dense: Vec<Option<AnyTensor<F>>>,
) -> HashMap<usize, AnyTensor<F>> {
    dense
        .into_iter()
        .enumerate()
        .filter_map(|(id, g)| g.map(|g| (id, g)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    const NODES: &[NodeInfo] = &[
        NodeInfo {
            id: 0,
            name: Some("x"),
            op: "input",
            parents: &[],
            requires_grad: true,
        },
        NodeInfo {
            id: 1,
            name: Some("c"),
            op: "input",
            parents: &[],
            requires_grad: false,
        },
    ];

    #[test]
    fn dense_accumulation_checks_in_order() {
        let values = vec![
            Some(AnyTensor::from(array![1.0, 2.0])),
            Some(AnyTensor::scalar(3.0)),
        ];
        let mut grads = vec![None, None];
        // node missing
        let err =
            add_grad_dense(&mut grads, NODES, &values, 2, AnyTensor::scalar(1.0)).unwrap_err();
        assert_eq!(err, TapeError::InvalidNodeId { id: 2, len: 2 });
        // frozen node: dropped, even with a wrong shape
        add_grad_dense(&mut grads, NODES, &values, 1, AnyTensor::zeros(&[7])).unwrap();
        assert_eq!(grads[1], None);
        // wrong shape
        let err =
            add_grad_dense(&mut grads, NODES, &values, 0, AnyTensor::zeros(&[3])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "wrong contribution shape for input (at node 0 `x`): the node has shape [2], the contribution [3]"
        );
        // empty slot, then accumulate
        add_grad_dense(
            &mut grads,
            NODES,
            &values,
            0,
            AnyTensor::from(array![1.0, 1.0]),
        )
        .unwrap();
        add_grad_dense(
            &mut grads,
            NODES,
            &values,
            0,
            AnyTensor::from(array![2.0, 3.0]),
        )
        .unwrap();
        assert_eq!(grads[0], Some(AnyTensor::from(array![3.0, 4.0])));
        let sparse = sparse_from_dense(grads);
        assert_eq!(sparse.len(), 1);
        assert_eq!(sparse[&0], AnyTensor::from(array![3.0, 4.0]));
    }

    #[test]
    fn total_accumulation_adds_to_every_entry() {
        let values = vec![
            Some(AnyTensor::from(array![1.0, 2.0])),
            Some(AnyTensor::scalar(3.0)),
        ];
        let mut grads = vec![AnyTensor::zeros(&[2]), AnyTensor::scalar(0.0)];
        add_grad_all(
            &mut grads,
            NODES,
            &values,
            0,
            AnyTensor::from(array![1.0, 2.0]),
        )
        .unwrap();
        add_grad_all(&mut grads, NODES, &values, 1, AnyTensor::scalar(5.0)).unwrap();
        assert_eq!(
            grads,
            vec![AnyTensor::from(array![1.0, 2.0]), AnyTensor::scalar(0.0)]
        );
        assert!(add_grad_all(&mut grads, NODES, &values, 5, AnyTensor::scalar(5.0)).is_err());
    }

    #[test]
    fn first_contribution_moves_later_ones_add() {
        let mut slot = None;
        Acc::to(&mut slot).put(array![1.0_f64, 2.0]).unwrap();
        Acc::to(&mut slot).put(array![10.0_f64, 20.0]).unwrap();
        Acc::skip().put(array![100.0_f64, 200.0]).unwrap();
        assert_eq!(slot, Some(array![11.0, 22.0]));
    }

    #[test]
    fn skipped_contributions_are_never_computed() {
        let acc: Acc<'_, f64> = Acc::skip();
        acc.put_with(|| panic!("computed a contribution nobody wants"))
            .unwrap();
    }

    #[test]
    fn unreached_parameter_gets_zeros() {
        assert_eq!(
            grad_or_zeros(None, &array![[1.0_f64, 2.0]]),
            array![[0.0, 0.0]]
        );
        assert_eq!(grad_or_zeros(Some(3.0_f64), &1.0), 3.0);
    }
}
