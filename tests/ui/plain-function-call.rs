use tape::prelude::*;

fn helper(x: &Array1<f64>) -> Array1<f64> {
    x * 2.0
}

#[differentiable]
fn f(x: &Array1<f64>) -> f64 {
    helper(x).sum()
}

fn main() {}
