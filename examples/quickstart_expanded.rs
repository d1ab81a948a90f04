//! What `#[differentiable]` writes for the quickstart's `loss`, by hand: the forward pass
//! with the checked kernels, then one reverse block per node, last node first.
//!
//! `cargo run --example quickstart_expanded`
//!
//! The macro's own output (`cargo expand`, or the `TAPE_EXPAND` test of `tape-macros`) is this
//! plus its optimizations: `tanh(z + b)` runs as one fused loop forward and one backward, and
//! each intermediate array is moved into the kernel that reads it last (`tape::reuse`). Those
//! change where values are written, not what is computed: `tests/examples.rs` checks that this
//! file's `loss_grad` returns exactly what the generated one does.

use tape::prelude::*;
use tape::{Acc, ops};

/// The quickstart's loss, as written there (without the attribute): z = x·w + b,
/// h = tanh(z), L = mse(h, y).
pub fn loss(w: &Array2<f64>, b: &Array1<f64>, x: &Array2<f64>, y: &Array2<f64>) -> f64 {
    let z = x.dot(w) + b;
    let h = tanh(&z);
    mse(&h, y)
}

/// `loss`'s value and gradient, as `loss_grad` returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct LossGrad {
    /// The value of `loss` at the inputs.
    pub value: f64,
    /// `∂loss/∂w`.
    pub w: Array2<f64>,
    /// `∂loss/∂b`.
    pub b: Array1<f64>,
}

/// The static tape, as `LossTape::NODES` lists it:
///
/// | id | name | op | parents |
/// |---|---|---|---|
/// | 0 | `w` | input | |
/// | 1 | `b` | input | |
/// | 2 | `x` | input (`#[no_grad]`) | |
/// | 3 | `y` | input (`#[no_grad]`) | |
/// | 4 | | dot | 2, 0 |
/// | 5 | `z` | add | 4, 1 |
/// | 6 | `h` | tanh | 5 |
/// | 7 | | mse | 6, 3 |
///
/// # Errors
/// A [`TapeError`] naming the node, the op and the shapes when a kernel rejects its operands
/// (`x`'s columns and `w`'s rows differ, `b` does not broadcast, `y` is not `h`'s shape).
pub fn loss_grad(
    w: &Array2<f64>,
    b: &Array1<f64>,
    x: &Array2<f64>,
    y: &Array2<f64>,
) -> Result<LossGrad, TapeError> {
    // The forward pass: every node's value, each kernel's error tagged with its node.
    let v4 = ops::linalg::dot(x, w).map_err(|e| e.at_node(4, None))?;
    let z = ops::arith::add(&v4, b).map_err(|e| e.at_node(5, Some("z")))?;
    let h = ops::unary::tanh(&z).map_err(|e| e.at_node(6, Some("h")))?;
    let value = ops::loss::mse(&h, y).map_err(|e| e.at_node(7, None))?;

    // The reverse sweep: one slot per node that needs a gradient, filled by the VJPs of the
    // nodes that read it. `x` and `y` are `#[no_grad]`: their slots are skipped.
    let (mut g_w, mut g_b): (Option<Array2<f64>>, Option<Array1<f64>>) = (None, None);
    let (mut g4, mut g_z, mut g_h) = (None, None, None);
    // Node 7, `mse(h, y)`, seeded with ∂L/∂L = 1: h̄ = 2(h − y)/n.
    ops::loss::mse_vjp(1.0, &h, y, &value, Acc::to(&mut g_h), Acc::skip())
        .map_err(|e| e.at_node(7, None))?;
    // Node 6, `tanh(z)`: z̄ = h̄ ⊙ (1 − h²), from tanh's output.
    if let Some(g) = g_h {
        ops::unary::tanh_vjp(g, &z, &h, Acc::to(&mut g_z)).map_err(|e| e.at_node(6, Some("h")))?;
    }
    // Node 5, `z = v4 + b`: both get z̄, b's summed over the broadcast rows.
    if let Some(g) = g_z {
        ops::arith::add_vjp(g, &v4, b, &z, Acc::to(&mut g4), Acc::to(&mut g_b))
            .map_err(|e| e.at_node(5, Some("z")))?;
    }
    // Node 4, `x·w`: w̄ = xᵀ·v̄4 (x̄ is not wanted).
    if let Some(g) = g4 {
        ops::linalg::dot_vjp(g, x, w, &v4, Acc::skip(), Acc::to(&mut g_w))
            .map_err(|e| e.at_node(4, None))?;
    }
    Ok(LossGrad {
        value,
        // A parameter the output does not reach gets zeros of its shape.
        w: g_w.unwrap_or_else(|| Array2::zeros(w.raw_dim())),
        b: g_b.unwrap_or_else(|| Array1::zeros(b.raw_dim())),
    })
}

fn main() -> Result<(), TapeError> {
    let x = array![[0.5, -1.0, 0.25], [1.5, 0.0, -0.5]];
    let y = array![[0.25], [-0.5]];
    let (w, b) = (array![[0.3], [-0.2], [0.1]], array![0.05]);
    let g = loss_grad(&w, &b, &x, &y)?;
    assert_eq!(g.value, loss(&w, &b, &x, &y));
    println!("loss {:.6}", g.value);
    println!("∂loss/∂w = {}", g.w.t());
    println!("∂loss/∂b = {}", g.b);
    Ok(())
}
