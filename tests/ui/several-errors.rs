use tape::prelude::*;

// Every mistake is reported in one build, and the function itself still compiles: `main`
// calls it without a secondary error.
#[differentiable]
fn f(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> f64 {
    let z = x.dot(w);
    let y = &z % 2.0;
    println!("{y}");
    let _h = |v: f64| v;
    let _s = match 1 { _ => z.sum() };
    loop {}
}

fn main() {
    let _ = f(&Array2::zeros((2, 2)), &Array2::zeros((2, 2)));
}
