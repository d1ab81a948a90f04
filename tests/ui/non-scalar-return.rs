use tape::prelude::*;

#[differentiable]
fn f(x: &Array1<f64>) -> Array1<f64> {
    x.exp()
}

fn main() {}
