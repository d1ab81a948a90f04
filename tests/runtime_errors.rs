//! Bad input at run time is an `Err(TapeError)` naming the node, its source name, the op and
//! the shapes: never a panic.

use tape::prelude::*;

#[differentiable]
fn layer(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> f64 {
    let z = x.dot(w);
    z.sum()
}

#[test]
fn matmul_inner_dimensions() {
    let err = layer_grad(&Array2::zeros((4, 5)), &Array2::zeros((2, 3))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "dot: inner dimensions differ: [2, 3] and [4, 5] (at node 2 `z`)"
    );
    assert_eq!(err.op(), Some("dot"));
}

#[differentiable]
fn biased(x: &Array2<f64>, b: &Array1<f64>) -> f64 {
    let y = x + b;
    y.sum()
}

#[test]
fn shapes_that_do_not_broadcast() {
    let err = biased_grad(&Array2::zeros((4, 3)), &Array1::zeros(4)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "add: shapes do not broadcast: [4, 3] and [4] (at node 2 `y`)"
    );
}

#[differentiable]
fn column_total(x: &Array2<f64>) -> f64 {
    x.sum_axis(Axis(2)).sum()
}

#[test]
fn axis_out_of_range() {
    let err = column_total_grad(&Array2::zeros((2, 3))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "sum_axis: axis 2 is out of range for shape [2, 3] (at node 1)"
    );
}

#[differentiable]
fn log_likelihood(p: &Array1<f64>) -> f64 {
    let logp = p.ln();
    logp.sum()
}

#[test]
fn ln_of_a_non_positive_value() {
    let err = log_likelihood_grad(&array![0.5, 0.0, 0.25]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "ln: non-positive input 0 at index [1] (at node 1 `logp`)"
    );
    assert!(matches!(err, TapeError::Domain { .. }));
}

#[differentiable]
fn average(x: &Array1<f64>) -> f64 {
    x.mean().unwrap()
}

#[test]
fn mean_of_nothing() {
    let err = average_grad(&Array1::zeros(0)).unwrap_err();
    assert!(
        err.to_string().starts_with("mean: the mean of no elements"),
        "{err}"
    );
}

#[differentiable]
fn regression(w: &Array1<f64>, #[no_grad] x: &Array2<f64>, #[no_grad] y: &Array1<f64>) -> f64 {
    mse(&x.dot(w), y)
}

#[test]
fn loss_operands_of_different_shapes() {
    let err =
        regression_grad(&Array1::zeros(3), &Array2::zeros((5, 3)), &Array1::zeros(4)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mse: prediction and target differ: [5] and [4] (at node 4)"
    );
}

#[test]
fn the_original_function_panics_where_grad_returns_an_error() {
    // The plain function behaves like ndarray code: it panics on the same input.
    let result = std::panic::catch_unwind(|| {
        regression(&Array1::zeros(3), &Array2::zeros((5, 3)), &Array1::zeros(4))
    });
    assert!(result.is_err());
}

#[test]
fn the_functions_themselves_compute_on_valid_input() {
    assert_eq!(layer(&Array2::ones((3, 2)), &Array2::ones((1, 3))), 6.0);
    assert_eq!(biased(&Array2::ones((2, 2)), &Array1::ones(2)), 8.0);
    assert!(std::panic::catch_unwind(|| column_total(&Array2::ones((2, 3)))).is_err());
    assert_eq!(log_likelihood(&array![1.0]), 0.0);
    assert_eq!(average(&array![1.0, 3.0]), 2.0);
}
