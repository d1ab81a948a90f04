use tape::prelude::*;

// Every mistake is reported in one build, and the function itself still compiles: `main`
// calls it without a secondary error.
#[differentiable]
fn f(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> f64 {
    let z = frobnicate(x.dot(w));
    let y = &z % 2.0;
    println!("{y}");
    let _h = |v: f64| v;
    z.sum()
}

fn frobnicate(a: Array2<f64>) -> Array2<f64> {
    a
}

fn main() {
    let _ = f(&Array2::zeros((2, 2)), &Array2::zeros((2, 2)));
}
