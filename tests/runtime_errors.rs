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

// The backward family: one test per row of the error table. The network is the seed's:
// z1 = W1·x + b1, h = relu(z1), y = W2·h + b2, loss = Σ y (nodes 0–10, output 10).
#[differentiable]
fn net(
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    #[no_grad] x: &Array1<f64>,
) -> f64 {
    let z1 = w1.dot(x) + b1;
    let h = relu(&z1);
    let y = w2.dot(&h) + b2;
    y.sum()
}

fn recorded() -> NetTape {
    NetTape::record(
        &array![[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
        &array![0.1, 0.2, 0.3],
        &array![[0.7, 0.8, 0.9]],
        &array![0.4],
        &array![0.5, 0.8],
    )
    .unwrap()
}

fn zeros(t: &NetTape) -> Vec<AnyTensor> {
    t.zero_grads()
}

#[test]
fn invalid_output_id() {
    let t = recorded();
    let seed = AnyTensor::scalar(1.0);
    let err = t.backward_dense(11, seed.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid output id 11: the tape has 11 nodes"
    );
    assert_eq!(
        t.backward_dense_all(99, seed.clone()).unwrap_err(),
        TapeError::InvalidOutputId { id: 99, len: 11 }
    );
    assert_eq!(
        t.backward_sparse(usize::MAX, seed).unwrap_err(),
        TapeError::InvalidOutputId {
            id: usize::MAX,
            len: 11
        }
    );
}

#[test]
fn seed_shape_mismatch() {
    let t = recorded();
    let err = t.backward_dense(6, AnyTensor::scalar(1.0)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "seed shape mismatch at node 6 `z1` (add): the output has shape [3], the seed []"
    );
    assert!(matches!(
        t.backward_dense_all(10, AnyTensor::zeros(&[1])),
        Err(TapeError::SeedShape { .. })
    ));
    assert!(matches!(
        t.backward_sparse(0, AnyTensor::zeros(&[2, 3])),
        Err(TapeError::SeedShape { .. })
    ));
}

#[test]
fn wrong_initial_array_length() {
    let t = recorded();
    let mut short = zeros(&t);
    short.pop();
    let err = t.backward_dense_from(short).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong initial array length: the tape has 11 nodes, the array 10 entries"
    );
}

#[test]
fn wrong_gradient_shape_for_node() {
    let t = recorded();
    let mut bad = zeros(&t);
    bad[7] = AnyTensor::zeros(&[4]);
    let err = t.backward_dense_from(bad.clone()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong gradient shape for node 7 `h` (relu): the node has shape [3], the gradient [4]"
    );
    assert!(matches!(
        t.backward_dense_from_loop(3, bad.clone()),
        Err(TapeError::GradShape { .. })
    ));
    assert!(matches!(
        t.backward_dense_from_step(&mut bad, 9),
        Err(TapeError::GradShape { .. })
    ));
}

#[test]
fn invalid_node_id_for_step_and_loop() {
    let t = recorded();
    let mut acc = zeros(&t);
    assert_eq!(
        t.backward_dense_from_step(&mut acc, 11).unwrap_err(),
        TapeError::InvalidNodeId { id: 11, len: 11 }
    );
    assert_eq!(
        t.backward_dense_from_loop(12, acc.clone()).unwrap_err(),
        TapeError::InvalidNodeId { id: 12, len: 11 }
    );
    assert!(t.backward_dense_from_loop(11, acc).is_ok());
    assert_eq!(
        t.value(11).unwrap_err(),
        TapeError::InvalidNodeId { id: 11, len: 11 }
    );
}

#[test]
fn wrong_contribution_shape() {
    let t = recorded();
    let mut dense = vec![None; NetTape::NODES.len()];
    let err = tape::add_grad_dense(
        &mut dense,
        NetTape::NODES,
        t.values(),
        6,
        AnyTensor::zeros(&[2]),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "wrong contribution shape for add (at node 6 `z1`): the node has shape [3], the contribution [2]"
    );
    let mut all = zeros(&t);
    assert!(matches!(
        tape::add_grad_all(
            &mut all,
            NetTape::NODES,
            t.values(),
            0,
            AnyTensor::scalar(1.0)
        ),
        Err(TapeError::ContributionShape { .. })
    ));
    // A contribution to a frozen node (x, node 4) is dropped before its shape is looked at.
    tape::add_grad_dense(
        &mut dense,
        NetTape::NODES,
        t.values(),
        4,
        AnyTensor::zeros(&[9]),
    )
    .unwrap();
    assert_eq!(dense[4], None);
}

#[test]
fn record_reports_kernel_errors() {
    let err = NetTape::record(
        &Array2::zeros((3, 2)),
        &Array1::zeros(3),
        &Array2::zeros((1, 3)),
        &Array1::zeros(1),
        &Array1::zeros(5),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "dot: inner dimensions differ: [3, 2] and [5] (at node 5)"
    );
    let err = LogLikelihoodTape::record(&array![1.0, -1.0]).unwrap_err();
    assert!(matches!(err, TapeError::Domain { .. }), "{err}");
    assert_eq!(
        net(
            &Array2::zeros((3, 2)),
            &Array1::zeros(3),
            &Array2::zeros((1, 3)),
            &Array1::zeros(1),
            &Array1::zeros(2)
        ),
        0.0
    );
}

#[test]
fn no_input_makes_the_family_panic() {
    // Every method, every id around the tape's bounds, seeds and arrays of many shapes.
    let t = recorded();
    let shapes: [&[usize]; 6] = [&[], &[1], &[2], &[3], &[1, 3], &[3, 2]];
    let mut calls = 0;
    for id in 0..14 {
        for shape in shapes {
            let seed = AnyTensor::zeros(shape);
            let _ = t.backward_dense(id, seed.clone());
            let _ = t.backward_dense_all(id, seed.clone());
            let _ = t.backward_sparse(id, seed.clone());
            let mut acc = zeros(&t);
            if let Some(entry) = acc.get_mut(id) {
                *entry = seed.clone();
            }
            let _ = t.backward_dense_from(acc.clone());
            let _ = t.backward_dense_from_loop(id, acc.clone());
            let _ = t.backward_dense_from_step(&mut acc, id);
            acc.truncate(id);
            let _ = t.backward_dense_from(acc.clone());
            let _ = t.backward_dense_from_step(&mut acc, id.saturating_sub(1));
            let _ = t.value(id);
            calls += 10;
        }
    }
    let _ = t.backward();
    assert_eq!(calls, 14 * 6 * 10);
}

#[differentiable]
fn third(x: &Array1<f64>) -> f64 {
    x[2] * 2.0
}

#[test]
fn index_out_of_bounds() {
    let x = array![1.0, 2.0, 3.0];
    assert_eq!(third_grad(&x).unwrap().value, third(&x));
    let err = third_grad(&array![1.0, 2.0]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "index: index 2 is out of bounds for length 2 (at node 1)"
    );
}

// After a kernel fails, generated code runs on with placeholders (`tape_runtime::keep`) and
// returns the first error at the end: kernels failing later on the placeholders go
// unreported, and the user's own expressions never see a placeholder.
#[differentiable]
fn fails_early(x: &Array1<f64>, y: &Array1<f64>) -> f64 {
    let h = x * y;
    // On an empty placeholder this would underflow and panic.
    let last = (h.len() - 1) as f64;
    let z = &h + x;
    (z * last).sum()
}

#[differentiable]
fn tested_after_a_failure(
    x: &Array1<f64>,
    #[no_grad] m: &Array1<f64>,
    #[no_grad] n: &Array1<f64>,
) -> f64 {
    let mm = m * n;
    let r = x.dot(x);
    // Reads an element of a computed value: out of bounds on an empty placeholder.
    if mm[1] > 0.0 { r * 2.0 } else { r }
}

#[differentiable]
fn calls_after_a_failure(x: &Array1<f64>, y: &Array1<f64>) -> f64 {
    let h = x * y;
    fails_early(&h, x)
}

#[test]
fn the_first_failure_is_reported_and_nothing_reads_a_placeholder() {
    let (x, y) = (array![1.0, 2.0, 3.0], array![1.0, 2.0]);
    let first = "mul: shapes do not broadcast: [3] and [2] (at node 2 `h`)";
    assert_eq!(fails_early_grad(&x, &y).unwrap_err().to_string(), first);
    assert_eq!(
        FailsEarlyTape::record(&x, &y).unwrap_err().to_string(),
        first
    );
    assert_eq!(
        calls_after_a_failure_grad(&x, &y).unwrap_err().to_string(),
        first
    );
    match fails_early_vjp(&x, &y) {
        Err(e) => assert_eq!(e.to_string(), first),
        Ok(_) => panic!("mismatched inputs must fail"),
    }
    let err = tested_after_a_failure_grad(&x, &x, &y).unwrap_err();
    assert_eq!(
        err.to_string(),
        "mul: shapes do not broadcast: [3] and [2] (at node 3 `mm`)"
    );
    // And with valid inputs, the same functions compute.
    let g = fails_early_grad(&x, &x).unwrap();
    assert_eq!(g.value, fails_early(&x, &x));
    let g = tested_after_a_failure_grad(&x, &x, &x).unwrap();
    assert_eq!(g.value, tested_after_a_failure(&x, &x, &x));
    assert_eq!(g.x, &x * 4.0);
    let g = calls_after_a_failure_grad(&x, &x).unwrap();
    assert_eq!(g.value, calls_after_a_failure(&x, &x));
}
