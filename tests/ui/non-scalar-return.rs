use tape::prelude::*;

// An array output is fine for a function called from other differentiable functions, but it
// has no gradient of its own: calling its `_grad` is the error.
#[differentiable]
fn layer(w: &Array2<f64>, x: &Array2<f64>) -> Array2<f64> {
    x.dot(w)
}

fn main() {
    let w = Array2::zeros((2, 2));
    let _ = layer_grad(&w, &w);
}
