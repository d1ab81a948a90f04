//! The static tape as a Graphviz graph, to see what `#[differentiable]` built and, after a
//! backward pass, where the cotangent went.
//!
//! ```
//! use tape_runtime::{graphviz, NodeInfo};
//!
//! // The tape of `fn f(x: f64) -> f64 { let y = x * x; y.sin() }`, as `FTape::NODES` holds it.
//! const NODES: &[NodeInfo] = &[
//!     NodeInfo { id: 0, name: Some("x"), op: "input", parents: &[], requires_grad: true },
//!     NodeInfo { id: 1, name: Some("y"), op: "mul", parents: &[0, 0], requires_grad: true },
//!     NodeInfo { id: 2, name: None, op: "sin", parents: &[1], requires_grad: true },
//! ];
//! let dot = graphviz::to_dot(NODES, 2);
//! assert!(dot.starts_with("digraph tape {"));
//! assert!(dot.contains("n0 -> n1"));
//! assert!(dot.contains("n1 -> n2"));
//! ```
//!
//! Render with Graphviz: `dot -Tsvg tape.dot -o tape.svg`. A recorded tape draws itself with
//! [`Tape::to_dot`](crate::Tape::to_dot) (shapes) and
//! [`Tape::to_dot_with`](crate::Tape::to_dot_with) (shapes and cotangent norms).

use crate::any_tensor::AnyTensor;
use crate::float::Float;
use crate::node::NodeInfo;
use std::fmt::Write;

/// The static tape `nodes`, whose output is node `output`, as a Graphviz DOT digraph: a box per
/// node with its id, name and op, and an edge from each operand to the node that reads it
/// (twice for `x * x`). Parameters are shaded, nodes that get no gradient dashed, the output
/// double-bordered.
pub fn to_dot(nodes: &[NodeInfo], output: usize) -> String {
    render(nodes, output, |_| Vec::new())
}

/// [`to_dot`] with two more lines per node: the shape of its recorded value (`values`, one per
/// node id, `None` for a node in an arm of a branch that did not run) and the Euclidean norm
/// of its cotangent from a backward pass (`cotangents`, as
/// [`Tape::backward_dense`](crate::Tape::backward_dense) returns them; `—` for a node the
/// pass did not reach). Either slice may be empty to leave that line out.
pub fn to_dot_annotated<F: Float>(
    nodes: &[NodeInfo],
    output: usize,
    values: &[Option<AnyTensor<F>>],
    cotangents: &[Option<AnyTensor<F>>],
) -> String {
    render(nodes, output, |id| {
        let mut lines = Vec::new();
        if !values.is_empty() {
            lines.push(match values.get(id) {
                Some(Some(v)) => shape(v),
                _ => "not evaluated".to_string(),
            });
        }
        if !cotangents.is_empty() {
            lines.push(match cotangents.get(id) {
                Some(Some(g)) => format!("‖ḡ‖ = {}", number(norm(g))),
                _ => "‖ḡ‖ —".to_string(),
            });
        }
        lines
    })
}

fn render(nodes: &[NodeInfo], output: usize, extra: impl Fn(usize) -> Vec<String>) -> String {
    let mut out = String::from("digraph tape {\n");
    out.push_str("    rankdir=TB;\n");
    out.push_str("    node [shape=box, fontname=\"Helvetica\", fontsize=11];\n");
    for node in nodes {
        let first = match node.name {
            Some(name) => format!("{}: {name} = {}", node.id, node.op),
            None => format!("{}: {}", node.id, node.op),
        };
        let lines: Vec<String> = std::iter::once(first)
            .chain(extra(node.id))
            .map(|line| escape(&line))
            .collect();
        // `\n` inside a DOT string is a line break.
        let label = lines.join("\\n");
        let mut style = Vec::new();
        if node.op == "input" {
            style.push("filled");
        }
        if !node.requires_grad {
            style.push("dashed");
        }
        let _ = write!(out, "    n{} [label=\"{label}\"", node.id);
        if !style.is_empty() {
            let _ = write!(
                out,
                ", style=\"{}\", fillcolor=\"#e8eef7\"",
                style.join(",")
            );
        }
        if node.id == output {
            out.push_str(", peripheries=2");
        }
        out.push_str("];\n");
    }
    for node in nodes {
        for parent in node.parents {
            let _ = writeln!(out, "    n{parent} -> n{};", node.id);
        }
    }
    out.push_str("}\n");
    out
}

/// Escapes quotes and backslashes for a DOT string.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

fn shape<F: Float>(value: &AnyTensor<F>) -> String {
    let dims: Vec<String> = value.shape().iter().map(usize::to_string).collect();
    if dims.is_empty() {
        "scalar".to_string()
    } else {
        format!("[{}]", dims.join(" × "))
    }
}

fn norm<F: Float>(g: &AnyTensor<F>) -> f64 {
    g.view()
        .iter()
        .map(|&v| {
            let v = Float::to_f64(v);
            v * v
        })
        .sum::<f64>()
        .sqrt()
}

/// Four significant digits, in scientific notation outside `[1e-3, 1e4)`.
fn number(value: f64) -> String {
    if value == 0.0 || (1e-3..1e4).contains(&value) {
        format!("{value:.4}")
    } else {
        format!("{value:.3e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &[NodeInfo] = &[
        NodeInfo {
            id: 0,
            name: Some("w"),
            op: "input",
            parents: &[],
            requires_grad: true,
        },
        NodeInfo {
            id: 1,
            name: Some("x"),
            op: "input",
            parents: &[],
            requires_grad: false,
        },
        NodeInfo {
            id: 2,
            name: None,
            op: "mul",
            parents: &[0, 1],
            requires_grad: true,
        },
        NodeInfo {
            id: 3,
            name: Some("say \"hi\""),
            op: "const",
            parents: &[],
            requires_grad: false,
        },
        NodeInfo {
            id: 4,
            name: None,
            op: "sum",
            parents: &[2],
            requires_grad: true,
        },
    ];

    #[test]
    fn every_node_and_edge_is_drawn() {
        let dot = to_dot(NODES, 4);
        assert!(
            dot.starts_with("digraph tape {\n") && dot.ends_with("}\n"),
            "{dot}"
        );
        for id in 0..NODES.len() {
            assert!(
                dot.contains(&format!("    n{id} [label=\"{id}: ")),
                "node {id}: {dot}"
            );
        }
        let edges: Vec<&str> = dot.lines().filter(|l| l.contains("->")).collect();
        assert_eq!(edges, ["    n0 -> n2;", "    n1 -> n2;", "    n2 -> n4;"]);
        // Styles: a shaded parameter, a dashed non-differentiable input, the output's border.
        assert!(
            dot.contains("n0 [label=\"0: w = input\", style=\"filled\""),
            "{dot}"
        );
        assert!(
            dot.contains("n1 [label=\"1: x = input\", style=\"filled,dashed\""),
            "{dot}"
        );
        assert!(
            dot.contains("n4 [label=\"4: sum\", peripheries=2];"),
            "{dot}"
        );
        // Quotes in a name are escaped.
        assert!(dot.contains(r#"3: say \"hi\" = const"#), "{dot}");
    }

    #[test]
    fn annotations_give_shapes_and_cotangent_norms() {
        let values: Vec<Option<AnyTensor<f64>>> = vec![
            Some(AnyTensor::new(ndarray::arr1(&[1.0, 2.0]).into_dyn())),
            Some(AnyTensor::new(ndarray::arr2(&[[1.0], [2.0]]).into_dyn())),
            None,
            Some(AnyTensor::scalar(2.0)),
            Some(AnyTensor::scalar(5.0)),
        ];
        let cotangents = vec![
            Some(AnyTensor::new(ndarray::arr1(&[3.0, 4.0]).into_dyn())),
            None,
            Some(AnyTensor::new(ndarray::arr1(&[1e-6, 0.0]).into_dyn())),
            None,
            Some(AnyTensor::scalar(1.0)),
        ];
        let dot = to_dot_annotated(NODES, 4, &values, &cotangents);
        assert!(dot.contains(r"0: w = input\n[2]\n‖ḡ‖ = 5.0000"), "{dot}");
        assert!(dot.contains(r"1: x = input\n[2 × 1]\n‖ḡ‖ —"), "{dot}");
        assert!(
            dot.contains(r"2: mul\nnot evaluated\n‖ḡ‖ = 1.000e-6"),
            "{dot}"
        );
        assert!(dot.contains(r"4: sum\nscalar\n‖ḡ‖ = 1.0000"), "{dot}");
        // Without annotations it is the plain graph.
        assert_eq!(
            to_dot_annotated::<f64>(NODES, 4, &[], &[]),
            to_dot(NODES, 4)
        );
    }
}
