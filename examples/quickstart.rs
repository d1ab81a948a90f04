//! The quickstart: a one-layer network fitted by gradient descent, with gradients from
//! `#[differentiable]`.
//!
//! `cargo run --release --example quickstart`

use tape::prelude::*;

/// Mean squared error of a tanh layer: z = x·w + b, h = tanh(z), L = mse(h, y).
///
/// An ordinary function: it compiles and runs as written. `#[differentiable]` adds
/// `loss_grad`, which returns the loss and its gradient with respect to `w` and `b`
/// (`x` and `y` are data, marked `#[no_grad]`).
#[differentiable]
pub fn loss(
    w: &Array2<f64>,
    b: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] y: &Array2<f64>,
) -> f64 {
    let z = x.dot(w) + b;
    let h = tanh(&z);
    mse(&h, y)
}

fn main() -> Result<(), TapeError> {
    // Data from a known layer: y = tanh(x·w* + b*).
    let x = Array2::from_shape_fn((64, 3), |(i, j)| {
        ((i * 7 + j * 13) % 17) as f64 / 17.0 - 0.5
    });
    let w_true = array![[1.5], [-2.0], [0.5]];
    let b_true = array![0.25];
    let y = tanh(&(x.dot(&w_true) + &b_true));

    let mut w = Array2::zeros((3, 1));
    let mut b = Array1::zeros(1);
    let learning_rate = 2.0;
    for step in 0..=400 {
        let g = loss_grad(&w, &b, &x, &y)?;
        if step % 100 == 0 {
            println!("step {step:>3}: loss {:.3e}", g.value);
        }
        w.scaled_add(-learning_rate, &g.w);
        b.scaled_add(-learning_rate, &g.b);
    }
    println!("fitted w = {}, b = {}", w.t(), b);
    println!("true   w = {}, b = {}", w_true.t(), b_true);

    // The gradient agrees with central differences.
    let g = loss_grad(&w, &b, &x, &y)?;
    let numeric = tape::gradcheck::numeric_gradient(|w| loss(w, &b, &x, &y), &w, 1e-6);
    let (err, _) = tape::gradcheck::max_relative_error(&g.w, &numeric);
    println!("max relative error of ∂loss/∂w against central differences: {err:.1e}");
    Ok(())
}
