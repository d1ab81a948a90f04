//! [`TapeError`]: every way a forward or backward pass can fail.
//!
//! Kernels report the op and the shapes; the generated code then attaches the node
//! ([`TapeError::at_node`]) so that a message names the node id and its source name.

use std::fmt;

/// A node of a static tape, as named in an error: its id and, where the source gave it one,
/// its name (the parameter or the `let` binding that holds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLabel {
    /// The node's id (its index in the tape).
    pub id: usize,
    /// The parameter or `let` binding that holds the node, if any.
    pub name: Option<&'static str>,
}

impl fmt::Display for NodeLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(name) => write!(f, "node {} `{}`", self.id, name),
            None => write!(f, "node {}", self.id),
        }
    }
}

/// Formats `" at node 5 `z`"`, or nothing when the node is not known yet.
struct At(Option<NodeLabel>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(node) => write!(f, " (at {node})"),
            None => Ok(()),
        }
    }
}

/// Formats a shape as `[2, 3]`, a scalar as `[]`.
struct Shape<'a>(&'a [usize]);

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// An error of a forward or backward pass.
///
/// Every variant names the op and the shapes involved; once the generated code has attached it,
/// the node id and its source name too.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TapeError {
    /// Two operands whose shapes do not fit the op (matmul inner dimensions, elementwise
    /// operands that do not broadcast, a loss whose prediction and target differ).
    #[error("{op}: {what}: {} and {}{}", Shape(.lhs), Shape(.rhs), At(*.node))]
    Shape {
        /// The op, as in `NodeInfo::op`.
        op: &'static str,
        /// What does not fit, e.g. "inner dimensions differ".
        what: &'static str,
        /// The left operand's shape.
        lhs: Vec<usize>,
        /// The right operand's shape.
        rhs: Vec<usize>,
        /// The node, once known.
        node: Option<NodeLabel>,
    },
    /// An operand whose rank the op does not accept (e.g. `dot` of 3-d arrays).
    #[error("{op}: {what}, got shape {}{}", Shape(.shape), At(*.node))]
    Rank {
        /// The op.
        op: &'static str,
        /// What the op accepts, e.g. "expects 1-d or 2-d operands".
        what: &'static str,
        /// The operand's shape.
        shape: Vec<usize>,
        /// The node, once known.
        node: Option<NodeLabel>,
    },
    /// An axis beyond the operand's dimensions.
    #[error("{op}: axis {axis} is out of range for shape {}{}", Shape(.shape), At(*.node))]
    Axis {
        /// The op.
        op: &'static str,
        /// The axis asked for.
        axis: usize,
        /// The operand's shape.
        shape: Vec<usize>,
        /// The node, once known.
        node: Option<NodeLabel>,
    },
    /// An input outside the op's domain (`ln` of a non-positive value, `clamp` with
    /// `lo > hi`, the mean of an empty array).
    #[error("{op}: {what}{}", At(*.node))]
    Domain {
        /// The op.
        op: &'static str,
        /// What is wrong, with the offending value and where it is.
        what: String,
        /// The node, once known.
        node: Option<NodeLabel>,
    },
    /// `out_id` does not name a node of the tape.
    #[error("invalid output id {id}: the tape has {len} nodes")]
    InvalidOutputId {
        /// The id asked for.
        id: usize,
        /// The number of nodes.
        len: usize,
    },
    /// A node id (or loop bound) beyond the tape.
    #[error("invalid node id {id}: the tape has {len} nodes")]
    InvalidNodeId {
        /// The id asked for.
        id: usize,
        /// The number of nodes.
        len: usize,
    },
    /// The seed's shape differs from the output node's.
    #[error("seed shape mismatch at {node} ({op}): the output has shape {}, the seed {}", Shape(.expected), Shape(.got))]
    SeedShape {
        /// The output node.
        node: NodeLabel,
        /// Its op.
        op: &'static str,
        /// The output's shape.
        expected: Vec<usize>,
        /// The seed's shape.
        got: Vec<usize>,
    },
    /// An initial gradient array whose length differs from the node count.
    #[error("wrong initial array length: the tape has {expected} nodes, the array {got} entries")]
    InitialLength {
        /// The number of nodes.
        expected: usize,
        /// The array's length.
        got: usize,
    },
    /// A gradient entry whose shape differs from its node's.
    #[error("wrong gradient shape for {node} ({op}): the node has shape {}, the gradient {}", Shape(.expected), Shape(.got))]
    GradShape {
        /// The node.
        node: NodeLabel,
        /// Its op.
        op: &'static str,
        /// The node's shape.
        expected: Vec<usize>,
        /// The gradient's shape.
        got: Vec<usize>,
    },
    /// A node that was not evaluated: it sits in an arm of a branch that did not run.
    #[error("{node} was not evaluated: it is in an arm of a branch that did not run")]
    NotEvaluated {
        /// The node.
        node: NodeLabel,
    },
    /// A VJP contribution whose shape differs from the parent it is sent to.
    #[error("wrong contribution shape for {}{}: the node has shape {}, the contribution {}", .op, At(*.node), Shape(.expected), Shape(.got))]
    ContributionShape {
        /// The op of the node that sent the contribution.
        op: &'static str,
        /// The parent's shape.
        expected: Vec<usize>,
        /// The contribution's shape.
        got: Vec<usize>,
        /// The node that sent it, once known.
        node: Option<NodeLabel>,
    },
}

impl TapeError {
    /// Attaches the node the error happened at, if the error has room for it and none is set.
    ///
    /// Generated code calls this on every kernel error, so messages read
    /// "matmul: inner dimensions differ: [2, 3] and [4, 5] (at node 4 `z`)".
    #[must_use]
    pub fn at_node(mut self, id: usize, name: Option<&'static str>) -> Self {
        let label = NodeLabel { id, name };
        match &mut self {
            TapeError::Shape { node, .. }
            | TapeError::Rank { node, .. }
            | TapeError::Axis { node, .. }
            | TapeError::Domain { node, .. }
            | TapeError::ContributionShape { node, .. } => {
                node.get_or_insert(label);
            }
            TapeError::NotEvaluated { node } if node.id == usize::MAX => *node = label,
            _ => {}
        }
        self
    }

    /// The op the error is about, where there is one.
    pub fn op(&self) -> Option<&'static str> {
        match self {
            TapeError::Shape { op, .. }
            | TapeError::Rank { op, .. }
            | TapeError::Axis { op, .. }
            | TapeError::Domain { op, .. }
            | TapeError::SeedShape { op, .. }
            | TapeError::GradShape { op, .. }
            | TapeError::ContributionShape { op, .. } => Some(op),
            _ => None,
        }
    }

    pub(crate) fn shape(
        op: &'static str,
        what: &'static str,
        lhs: &[usize],
        rhs: &[usize],
    ) -> TapeError {
        TapeError::Shape {
            op,
            what,
            lhs: lhs.to_vec(),
            rhs: rhs.to_vec(),
            node: None,
        }
    }

    pub(crate) fn rank(op: &'static str, what: &'static str, shape: &[usize]) -> TapeError {
        TapeError::Rank {
            op,
            what,
            shape: shape.to_vec(),
            node: None,
        }
    }

    pub(crate) fn axis(op: &'static str, axis: usize, shape: &[usize]) -> TapeError {
        TapeError::Axis {
            op,
            axis,
            shape: shape.to_vec(),
            node: None,
        }
    }

    pub(crate) fn domain(op: &'static str, what: String) -> TapeError {
        TapeError::Domain {
            op,
            what,
            node: None,
        }
    }
}

/// `Result` with [`TapeError`].
pub type Result<T, E = TapeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_op_shapes_and_node() {
        let e = TapeError::shape("matmul", "inner dimensions differ", &[2, 3], &[4, 5])
            .at_node(4, Some("z"));
        assert_eq!(
            e.to_string(),
            "matmul: inner dimensions differ: [2, 3] and [4, 5] (at node 4 `z`)"
        );
        // The first node attached wins: a callee's node is more precise than its caller's.
        let e = e.at_node(9, None);
        assert!(e.to_string().ends_with("(at node 4 `z`)"));
    }

    #[test]
    fn located_reads_an_empty_name_as_none() {
        let e = || TapeError::shape("add", "shapes differ", &[2], &[3]);
        assert!(
            crate::located(e(), 7, "h")
                .to_string()
                .ends_with("(at node 7 `h`)")
        );
        assert!(
            crate::located(e(), 7, "")
                .to_string()
                .ends_with("(at node 7)")
        );
    }

    #[test]
    fn domain_message_without_node() {
        let e = TapeError::domain("ln", "non-positive input -1 at index [0]".into());
        assert_eq!(e.to_string(), "ln: non-positive input -1 at index [0]");
        assert_eq!(e.op(), Some("ln"));
    }
}
