//! Every accepted parameter form: scalars, arrays by reference and by value, every static
//! dimension and `ArrayD`, `Array<F, IxN>`, integers, `#[no_grad]`; gradients come back in
//! each parameter's own type.

mod common;

use common::*;
use tape::prelude::*;

// f = a·Σx₀ + Σx₁ + Σx₂² + Σx₃ + Σx₄ + Σx₅ + Σx₆ + Σxd:  gradients a: Σx₀, x₀: a, x₂: 2x₂, rest: 1
#[differentiable]
#[allow(clippy::too_many_arguments)]
fn every_rank(
    a: f64,
    x0: &Array0<f64>,
    x1: Array1<f64>,
    x2: &Array2<f64>,
    x3: &Array3<f64>,
    x4: Array4<f64>,
    x5: &Array5<f64>,
    x6: &Array6<f64>,
    xd: ArrayD<f64>,
    xa: &ndarray::Array<f64, Ix2>,
) -> f64 {
    a * x0.sum()
        + x1.sum()
        + x2.powi(2).sum()
        + x3.sum()
        + x4.sum()
        + x5.sum()
        + x6.sum()
        + xd.sum()
        + xa.sum()
}

#[test]
fn every_static_dimension_and_dynamic() {
    let x0 = ndarray::arr0(1.5);
    let x1 = vec1(3, 1, -1.0, 1.0);
    let x2 = mat2(2, 2, 2, -1.0, 1.0);
    let x3 = Array3::from_elem((1, 2, 1), 0.5);
    let x4 = Array4::from_elem((1, 1, 2, 1), 0.5);
    let x5 = Array5::from_elem((1, 1, 1, 1, 2), 0.5);
    let x6 = Array6::from_elem((1, 1, 1, 1, 1, 2), 0.5);
    let xd = det(&[2, 1, 2], 3, -1.0, 1.0);
    let xa = mat2(1, 2, 4, -1.0, 1.0);
    let expected = every_rank(
        2.0,
        &x0,
        x1.clone(),
        &x2,
        &x3,
        x4.clone(),
        &x5,
        &x6,
        xd.clone(),
        &xa,
    );
    let g = every_rank_grad(2.0, &x0, x1, &x2, &x3, x4, &x5, &x6, xd, &xa).unwrap();
    assert_eq!(g.value, expected);
    assert_eq!(g.a, 1.5);
    assert_eq!(g.x0, ndarray::arr0(2.0));
    assert_eq!(g.x1, Array1::ones(3));
    check_analytic("x2", &g.x2, &(2.0 * &x2));
    assert_eq!(g.x3, Array3::ones((1, 2, 1)));
    assert_eq!(g.x4, Array4::ones((1, 1, 2, 1)));
    assert_eq!(g.x5, Array5::ones((1, 1, 1, 1, 2)));
    assert_eq!(g.x6, Array6::ones((1, 1, 1, 1, 1, 2)));
    assert_eq!(g.xd, ArrayD::ones(IxDyn(&[2, 1, 2])));
    assert_eq!(g.xa, Array2::ones((1, 2)));
}

// Scalars only, in f32: f = x·y + y:  ∂f/∂x = y,  ∂f/∂y = x + 1
/// A public function: its generated items are public too.
#[differentiable]
pub fn bilinear(x: f32, y: f32) -> f32 {
    x * y + y
}

#[test]
fn f32_scalars_and_public_items() {
    let g: BilinearGrad = bilinear_grad(2.0, 3.0).unwrap();
    assert_eq!((g.value, g.x, g.y), (9.0, 3.0, 3.0));
    assert_eq!(bilinear(2.0, 3.0), 9.0);
}

// Integer inputs of every width are constants; `#[no_grad]` scalars too.
// f = w·(n + k)·c:  ∂f/∂w = (n + k)·c
#[differentiable]
fn counts(w: f64, n: usize, k: i64, #[no_grad] c: f64) -> f64 {
    let scale = (n as f64) + (k as f64);
    w * scale * c
}

#[test]
fn integer_and_no_grad_scalars() {
    let g = counts_grad(0.5, 3, -1, 2.0).unwrap();
    assert_eq!(g.w, 4.0);
    assert_eq!(g.value, counts(0.5, 3, -1, 2.0));
}

// Lifetimes in the signature are kept.
#[differentiable]
#[allow(clippy::needless_lifetimes)] // the lifetime is what is tested
fn with_lifetime<'a>(x: &'a Array1<f64>) -> f64 {
    x.sum()
}

#[test]
fn lifetimes() {
    let g = with_lifetime_grad(&array![1.0, 2.0]).unwrap();
    assert_eq!(g.x, array![1.0, 1.0]);
    assert_eq!(with_lifetime(&array![1.0]), 1.0);
}

mod nested {
    use tape::prelude::*;

    // Generated items follow the function's visibility.
    #[differentiable]
    pub(crate) fn inner(x: f64) -> f64 {
        x.exp()
    }
}

#[test]
fn visibility_follows_the_function() {
    let g: nested::InnerGrad = nested::inner_grad(0.0).unwrap();
    assert_eq!(g.x, 1.0);
    assert_eq!(nested::inner(0.0), 1.0);
}
