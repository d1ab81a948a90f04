use tape::prelude::*;

#[differentiable]
fn f(x: &Array1<f64>, p: f64) -> f64 {
    x.powf(p).sum()
}

fn main() {}
