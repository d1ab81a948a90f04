use tape::prelude::*;

#[differentiable]
fn f(x: &Array1<f64>) -> f64 {
    x.mapv(|v| v * 2.0).sum()
}

fn main() {}
