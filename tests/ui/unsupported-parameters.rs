use tape::prelude::*;

#[differentiable]
fn f(x: &mut Array1<f64>, _v: Vec<f64>, _s: &f64) -> f64 {
    x.sum()
}

fn main() {}
