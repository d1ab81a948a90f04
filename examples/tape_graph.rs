//! Draws a static tape with Graphviz: a small classifier's loss, each node labeled with the
//! shape of its value and the norm of its cotangent after one backward pass.
//!
//! `cargo run --example tape_graph` writes `target/tape_graph.dot` and, where Graphviz is
//! installed, renders it to `target/tape_graph.svg` (`dot -Tsvg`).

use std::error::Error;
use std::path::Path;
use std::process::Command;
use tape::prelude::*;

/// Softmax cross-entropy of a one-hidden-layer network, as in the `train` example.
#[differentiable]
pub fn loss(
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] y: &Array2<f64>,
) -> f64 {
    let h = tanh(&(x.dot(w1) + b1));
    let logits = h.dot(w2) + b2;
    cross_entropy(&logits, y)
}

fn main() -> Result<(), Box<dyn Error>> {
    let x = Array2::from_shape_fn((8, 4), |(i, j)| ((i * 5 + j * 3) % 7) as f64 / 7.0 - 0.5);
    let y = Array2::from_shape_fn((8, 3), |(i, j)| if i % 3 == j { 1.0 } else { 0.0 });
    let w1 = Array2::from_shape_fn((4, 6), |(i, j)| ((i + 2 * j) % 5) as f64 / 5.0 - 0.4);
    let w2 = Array2::from_shape_fn((6, 3), |(i, j)| ((3 * i + j) % 4) as f64 / 4.0 - 0.375);
    let (b1, b2) = (Array1::zeros(6), Array1::zeros(3));

    // Record the forward pass, run the backward pass from the output, draw both.
    let recorded = LossTape::record(&w1, &b1, &w2, &b2, &x, &y)?;
    let cotangents = recorded.backward_dense(LossTape::OUTPUT, AnyTensor::scalar(1.0))?;
    let dot = recorded.to_dot_with(&cotangents);
    print!("{dot}");

    std::fs::create_dir_all("target")?;
    let path = Path::new("target").join("tape_graph.dot");
    std::fs::write(&path, &dot)?;
    println!("\nwrote {}", path.display());
    let svg = path.with_extension("svg");
    match Command::new("dot")
        .arg("-Tsvg")
        .arg(&path)
        .arg("-o")
        .arg(&svg)
        .status()
    {
        Ok(status) if status.success() => println!("rendered {}", svg.display()),
        _ => println!(
            "render it with Graphviz: dot -Tsvg {} -o {}",
            path.display(),
            svg.display()
        ),
    }
    Ok(())
}
