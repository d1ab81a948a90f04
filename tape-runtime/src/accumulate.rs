//! Where VJP contributions go: [`Acc`], one parent's gradient slot.
//!
//! A reverse sweep sends each node's cotangent through its op's VJP to its parents. A parent
//! used several times (a DAG) receives several contributions, which are summed: the first is
//! moved into the empty slot, later ones are added in place, so no zero-filled buffer is ever
//! allocated. A parent that does not require a gradient gets [`Acc::skip`], and its VJP
//! branch is never computed.

use crate::error::Result;
use crate::tensor::Value;

/// The gradient slot of one parent of a node, handed to the node's VJP.
#[derive(Debug)]
pub struct Acc<'a, T>(Option<&'a mut Option<T>>);

impl<'a, T: Value> Acc<'a, T> {
    /// Accumulate into `slot` (`None` until the first contribution arrives).
    pub fn to(slot: &'a mut Option<T>) -> Self {
        Acc(Some(slot))
    }

    /// Drop every contribution: the parent does not require a gradient.
    pub fn skip() -> Self {
        Acc(None)
    }

    /// Whether a contribution is wanted at all; VJPs test this before computing one.
    pub fn wanted(&self) -> bool {
        self.0.is_some()
    }

    /// Adds one contribution: moved into an empty slot, added in place to a filled one.
    ///
    /// # Errors
    /// [`TapeError::ContributionShape`](crate::TapeError::ContributionShape) when the
    /// contribution's shape differs from what the slot already holds.
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
    pub fn put_with(self, make: impl FnOnce() -> Result<T>) -> Result<()> {
        if self.wanted() {
            self.put(make()?)
        } else {
            Ok(())
        }
    }
}

/// The gradient of a parameter at the end of a sweep: what it received, or zeros of its shape
/// when the output does not depend on it (like JAX).
pub fn grad_or_zeros<T: Value>(slot: Option<T>, like: &T) -> T {
    match slot {
        Some(g) => g,
        None => like.zeros_like(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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
