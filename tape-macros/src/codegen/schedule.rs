//! The order of `_grad`'s forward `let`s: running sums sunk to where they end.
//!
//! Input: an unrolled `total += term(i)`: `total#0 = 0 + t0`, `t1 = …`, `total#1 = total#0 +
//! t1`, `t2 = …`, … Each `total#k` is read only by `total#k+1`.
//!
//! Output: the terms first, in order, then the additions back to back where the last one
//! stands. The same operations on the same values in the same order of association, so the
//! same result to the bit; but the running sum no longer lives across every term's
//! computation, where (among the many values the reverse sweep keeps) it would be spilled to
//! memory and reloaded on each addition's critical path.

use super::fuse::uses;
use super::scalar_path;
use crate::ir::{NodeId, NodeKind, Tape};
use std::collections::HashMap;

/// For each sum that ends a chain, the earlier links to emit right before it, in order.
pub fn chains(tape: &Tape) -> HashMap<NodeId, Vec<NodeId>> {
    let mut readers = vec![Vec::new(); tape.nodes.len()];
    for node in &tape.nodes {
        for u in uses(tape, node.id) {
            readers[u.0].push(node.id);
        }
    }
    let captured: Vec<NodeId> = tape
        .aux
        .iter()
        .flat_map(|aux| aux.code.captures.iter().map(|c| c.node))
        .collect();
    // The link under `id`: its earliest operand that is a sum read by `id` alone.
    let link = |id: NodeId| -> Option<NodeId> {
        let NodeKind::Op { args, .. } = &tape.node(id).kind else {
            return None;
        };
        args.iter()
            .copied()
            .filter(|a| {
                is_sum(tape, *a) && readers[a.0] == [id] && !captured.contains(a) && *a != id
            })
            .min()
    };
    let mut out = HashMap::new();
    let mut linked = vec![false; tape.nodes.len()];
    // From the last node back: a sum that is not itself a link heads a chain.
    for node in tape.nodes.iter().rev() {
        let head = node.id;
        if linked[head.0] || !is_sum(tape, head) {
            continue;
        }
        let mut members = Vec::new();
        let mut at = head;
        while let Some(below) = link(at) {
            linked[below.0] = true;
            members.push(below);
            at = below;
        }
        if members.len() >= 2 {
            members.reverse();
            out.insert(head, members);
        }
    }
    out
}

/// A scalar addition or subtraction on the scalar path.
fn is_sum(tape: &Tape, id: NodeId) -> bool {
    matches!(&tape.node(id).kind, NodeKind::Op { op, .. } if op.passes)
        && scalar_path(tape, id)
        && tape.node(id).group.is_none()
}
