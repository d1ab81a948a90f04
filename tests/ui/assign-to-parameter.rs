use tape::prelude::*;

#[differentiable]
fn f(mut x: f64) -> f64 {
    x = x * 2.0;
    x
}

fn main() {}
