//! Scalar VJPs run as early as their inputs allow, inside `_grad`'s forward pass.
//!
//! Input: an unrolled sum of scalar terms, `total = t0 + t1 + …`, each term computed from
//! `x[i]` reads with a few multiplications.
//!
//! Output: every scalar block of the reverse sweep moved to just after the last forward `let`
//! whose value it reads. The cotangent of a running sum is the seed whatever the terms are
//! (`add` reads nothing), so the sum's blocks run before the forward pass, and each term's
//! blocks right after the term: its intermediates die where they were made, as in a loop
//! written by hand, instead of all living across the whole forward pass to be spilled.
//!
//! A block can move only when it is plain float arithmetic (the scalar path) or an `x[i]`
//! read of a parameter, and when every node that reads its value can move too; anything else
//! stays in the reverse sweep, where it was. The same VJPs run on the same values, adding into
//! each slot in the same order (readers before operands, higher ids first), so the gradients
//! are the same to the bit.

use super::indexed::Indexed;
use super::{fuse::Group, scalar_path};
use crate::ir::{NodeId, NodeKind, Tape};

/// Where `_grad` runs each scalar block early. Empty outside `_grad`, or when the output is not
/// a scalar-path node (then nothing can move: every cotangent waits for the output's).
#[derive(Debug, Default)]
pub struct Eager {
    /// Per node: its block runs early (and is left out of the reverse sweep).
    pub moved: Vec<bool>,
    /// Blocks to run before the forward pass, highest id first.
    pub before: Vec<NodeId>,
    /// Blocks to run right after a node's forward `let`, keyed by that node, highest id first.
    pub after: Vec<Vec<NodeId>>,
    /// Per node: its scalar gradient slot is declared before the forward pass (`Option<F>`),
    /// as a moved block's own or one it adds into.
    pub slot: Vec<bool>,
    /// Arrays whose `x[i]` buffer (see `indexed`) moved blocks add into: declared
    /// right after the array's own forward `let`.
    pub buffers: Vec<NodeId>,
}

impl Eager {
    /// Whether node `id`'s block runs early.
    pub fn moved(&self, id: NodeId) -> bool {
        self.moved.get(id.0).copied().unwrap_or(false)
    }

    /// Whether node `id`'s slot is declared before the forward pass.
    pub fn declares_slot(&self, id: NodeId) -> bool {
        self.slot.get(id.0).copied().unwrap_or(false)
    }

    /// Whether array `a`'s `x[i]` buffer is declared in the forward pass.
    pub fn declares_buffer(&self, a: NodeId) -> bool {
        self.buffers.contains(&a)
    }
}

/// Plans the early blocks. `order` is the forward pass's order of `let`s (running sums sunk);
/// `indexed` the arrays whose `x[i]` reads add into a buffer.
pub fn plan(tape: &Tape, order: &[NodeId], groups: &[Group], indexed: &Indexed) -> Eager {
    let n = tape.nodes.len();
    let reached = tape.reached();
    let mut eager = Eager {
        moved: vec![false; n],
        slot: vec![false; n],
        after: vec![Vec::new(); n],
        ..Eager::default()
    };
    if !reached[tape.output.0] || !scalar_path(tape, tape.output) {
        return eager;
    }
    // Where each value exists: after its forward `let` (a fused group's members after the
    // group's last node, where the group's loop runs).
    let mut made = vec![usize::MAX; n];
    for (k, id) in order.iter().enumerate() {
        made[id.0] = k;
    }
    for group in groups {
        let at = made[group.last().0];
        for m in &group.members {
            made[m.0] = at;
        }
    }
    let mut readers: Vec<Vec<NodeId>> = vec![Vec::new(); n];
    for node in &tape.nodes {
        if reached[node.id.0] {
            for p in node.parents() {
                readers[p.0].push(node.id);
            }
        }
    }
    // The forward position a block waits for (`None`: it reads no value, so it can run
    // before the forward pass), or no position at all if it cannot move.
    let ready = |id: NodeId| -> Option<Option<usize>> {
        let node = tape.node(id);
        let NodeKind::Op { op, args, configs } = &node.kind else {
            return None;
        };
        if node.group.is_some() {
            return None;
        }
        // A node's configs (`powi`'s exponent, `x[i]`'s index) are locals of its own `let`.
        let mut reads = if configs.is_empty() {
            Vec::new()
        } else {
            vec![id]
        };
        if scalar_path(tape, id) {
            if op.reads.operands() {
                reads.extend(args.iter().copied());
            }
            if op.reads.output() {
                reads.push(id);
            }
        } else if op.name == "index"
            && node.guard.is_empty()
            && indexed.contains(&args[0])
            && matches!(tape.node(args[0]).kind, NodeKind::Param(_))
        {
            // The block adds into the parameter's buffer, declared after the parameter.
            reads.push(args[0]);
        } else {
            return None;
        }
        let at = reads.iter().map(|r| made[r.0]).max();
        if at == Some(usize::MAX) {
            return None;
        }
        Some(at)
    };
    // From the output back: a block runs once its readers' blocks have (their positions, or
    // later) and its values exist.
    let mut position: Vec<Option<Option<usize>>> = vec![None; n];
    for node in tape.nodes.iter().rev() {
        let id = node.id;
        if !reached[id.0] {
            continue;
        }
        let Some(mut at) = ready(id) else {
            continue;
        };
        let mut movable = id == tape.output || !readers[id.0].is_empty();
        for r in &readers[id.0] {
            match position[r.0] {
                Some(p) => at = at.max(p),
                None => movable = false,
            }
        }
        if movable {
            position[id.0] = Some(at);
        }
    }
    for node in tape.nodes.iter().rev() {
        let id = node.id;
        let Some(at) = position[id.0] else {
            continue;
        };
        eager.moved[id.0] = true;
        match at {
            None => eager.before.push(id),
            Some(k) => eager.after[order[k].0].push(id),
        }
        eager.slot[id.0] = true;
        let NodeKind::Op { args, .. } = &node.kind else {
            continue;
        };
        if scalar_path(tape, id) {
            args.iter()
                .filter(|a| reached[a.0])
                .for_each(|a| eager.slot[a.0] = true);
        } else if !eager.buffers.contains(&args[0]) {
            eager.buffers.push(args[0]);
        }
    }
    eager
}
