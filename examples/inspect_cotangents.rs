//! Inside the backward pass: print a small model's static tape and every node's cotangent.
//!
//! `cargo run --example inspect_cotangents`

use tape::prelude::*;

/// A two-layer network on one input: z1 = W1·x + b1, h = relu(z1), y = W2·h + b2, loss = Σ y.
#[differentiable]
pub fn net(
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    #[no_grad] x: &Array1<f64>,
) -> f64 {
    let z1 = w1.dot(x) + b1;
    let h = relu(&z1);
    let y = w2.dot(&h) + b2;
    y.sum()
}

fn main() -> Result<(), TapeError> {
    let w1 = array![[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]];
    let b1 = array![0.1, -0.2, -0.3];
    let w2 = array![[0.7, 0.8, 0.9]];
    let b2 = array![0.4];
    let x = array![0.5, 0.8];

    let tape = NetTape::record(&w1, &b1, &w2, &b2, &x)?;
    let cotangents = tape.backward_dense(NetTape::OUTPUT, AnyTensor::scalar(1.0))?;

    println!(
        "{:>2}  {:<6} {:<6} {:<8} {:<4} {:<36} cotangent",
        "id", "name", "op", "parents", "grad", "value"
    );
    for (node, g) in NetTape::NODES.iter().zip(&cotangents) {
        let value = tape.value(node.id)?;
        println!(
            "{:>2}  {:<6} {:<6} {:<8} {:<4} {:<36} {}",
            node.id,
            node.name.unwrap_or(""),
            node.op,
            format!("{:?}", node.parents),
            if node.requires_grad { "yes" } else { "" },
            compact(&value),
            g.as_ref()
                .map_or_else(|| "— (not reached)".to_string(), compact),
        );
    }
    Ok(())
}

/// A tensor on one line, three decimals: `0.310` for a scalar, `[0.310, 0.000]` for a vector.
fn compact(t: &AnyTensor) -> String {
    format!("{t:.3}")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
