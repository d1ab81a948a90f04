//! [`NodeInfo`]: one row of a static tape.

/// One node of a static tape, fixed at compile time.
///
/// Parameters come first, in signature order; then one node per operation in evaluation
/// order. Every parent id is smaller than its child's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeInfo {
    /// The node's id: its index in the tape.
    pub id: usize,
    /// The parameter or `let` binding that holds the node, if any.
    pub name: Option<&'static str>,
    /// The op, e.g. `"dot"`, `"tanh"`; `"input"` for a parameter, `"const"` for a constant.
    pub op: &'static str,
    /// The ids of the node's operands, in argument order.
    pub parents: &'static [usize],
    /// Whether the node depends on a differentiable parameter (and so gets a gradient).
    pub requires_grad: bool,
}
