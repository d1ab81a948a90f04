use tape::prelude::*;

#[differentiable]
fn f(x: &Array1<f64>) -> f64 {
    if x.sum() > 0.0 { x.exp().sum() } else { x.sum() }
}

fn main() {}
