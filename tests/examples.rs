//! The examples' code under test: the hand-written expansion of the quickstart against what
//! the macro generates, the training example's loss and its run, and the tape drawn as DOT.

#[allow(dead_code)]
#[path = "../examples/quickstart.rs"]
mod quickstart;

#[allow(dead_code)]
#[path = "../examples/quickstart_expanded.rs"]
mod expanded;

#[allow(dead_code)]
#[path = "../examples/train.rs"]
mod train;

use tape::gradcheck::{max_relative_error, numeric_gradient};
use tape::prelude::*;

/// Values in [-1, 1) from a seeded generator.
fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = train::Rng::new(seed);
    Array2::from_shape_fn((rows, cols), |_| 2.0 * rng.uniform() - 1.0)
}

#[test]
fn the_expanded_quickstart_computes_what_the_macro_generates() {
    for (n, k, m, seed) in [(2, 3, 1, 1), (64, 3, 1, 2), (5, 4, 3, 3), (1, 1, 1, 4)] {
        let (x, y) = (matrix(n, k, seed), matrix(n, m, seed + 10));
        let (w, b) = (
            matrix(k, m, seed + 20),
            matrix(1, m, seed + 30).row(0).to_owned(),
        );
        let generated = quickstart::loss_grad(&w, &b, &x, &y).unwrap();
        let by_hand = expanded::loss_grad(&w, &b, &x, &y).unwrap();
        assert_eq!(generated.value, by_hand.value, "value, x {n}×{k}");
        assert_eq!(generated.w, by_hand.w, "∂/∂w, x {n}×{k}");
        assert_eq!(generated.b, by_hand.b, "∂/∂b, x {n}×{k}");
    }
    // The same errors, naming the same node.
    let (w, b) = (matrix(3, 1, 5), Array1::zeros(1));
    let (x, y) = (matrix(4, 2, 6), matrix(4, 1, 7));
    let generated = quickstart::loss_grad(&w, &b, &x, &y).unwrap_err();
    let by_hand = expanded::loss_grad(&w, &b, &x, &y).unwrap_err();
    assert_eq!(generated.to_string(), by_hand.to_string());
    // The expansion's node table is the macro's.
    let ops: Vec<&str> = quickstart::LossTape::NODES.iter().map(|n| n.op).collect();
    assert_eq!(
        ops,
        [
            "input", "input", "input", "input", "dot", "add", "tanh", "mse"
        ]
    );
    let names: Vec<Option<&str>> = quickstart::LossTape::NODES.iter().map(|n| n.name).collect();
    assert_eq!(names[5..], [Some("z"), Some("h"), None]);
}

/// The training loss's gradient by hand: softmax cross-entropy through a tanh layer.
fn train_loss_by_hand(
    (w1, b1, w2, b2): (&Array2<f64>, &Array1<f64>, &Array2<f64>, &Array2<f64>),
    x: &Array2<f64>,
    y: &Array2<f64>,
    l2: f64,
) -> [Array2<f64>; 4] {
    let b2 = b2.row(0);
    let h = (x.dot(w1) + b1).mapv(f64::tanh);
    let logits = h.dot(w2) + b2;
    let shifted = &logits
        - &logits
            .map_axis(Axis(1), |r| r.fold(f64::MIN, |a, &v| a.max(v)))
            .insert_axis(Axis(1));
    let e = shifted.mapv(f64::exp);
    let p = &e / &e.sum_axis(Axis(1)).insert_axis(Axis(1));
    let dlogits = (p - y) / x.nrows() as f64;
    let dw2 = h.t().dot(&dlogits) + l2 * w2;
    let db2 = dlogits.sum_axis(Axis(0)).insert_axis(Axis(0));
    let dz = dlogits.dot(&w2.t()) * h.mapv(|t| 1.0 - t * t);
    let dw1 = x.t().dot(&dz) + l2 * w1;
    let db1 = dz.sum_axis(Axis(0)).insert_axis(Axis(0));
    [dw1, db1, dw2, db2]
}

#[test]
fn the_training_loss_gradient_is_backprop_and_central_differences() {
    let (x, labels) = (matrix(7, 4, 40), [0, 2, 1, 1, 0, 2, 2]);
    let y = train::one_hot(&labels);
    let (w1, b1, w2) = (
        matrix(4, 5, 41),
        matrix(1, 5, 42).row(0).to_owned(),
        matrix(5, 3, 43),
    );
    let b2 = matrix(1, 3, 44).row(0).to_owned();
    let l2 = 0.01;
    let g = train::loss_grad(&w1, &b1, &w2, &b2, &x, &y, l2).unwrap();
    assert_eq!(g.value, train::loss(&w1, &b1, &w2, &b2, &x, &y, l2));
    let b2_row = b2.clone().insert_axis(Axis(0));
    let hand = train_loss_by_hand((&w1, &b1, &w2, &b2_row), &x, &y, l2);
    let generated = [
        g.w1.clone(),
        g.b1.clone().insert_axis(Axis(0)),
        g.w2.clone(),
        g.b2.clone().insert_axis(Axis(0)),
    ];
    for (name, (generated, hand)) in ["w1", "b1", "w2", "b2"]
        .iter()
        .zip(generated.iter().zip(&hand))
    {
        let (err, at) = max_relative_error(generated, hand);
        assert!(
            err < 1e-12,
            "∂/∂{name} against backprop by hand: relative error {err:.2e} at {at}"
        );
    }
    let f = |w1: &Array2<f64>, b1: &Array1<f64>, w2: &Array2<f64>, b2: &Array1<f64>| {
        train::loss(w1, b1, w2, b2, &x, &y, l2)
    };
    let checks = [
        (
            "w1",
            max_relative_error(&g.w1, &numeric_gradient(|w| f(w, &b1, &w2, &b2), &w1, 1e-6)),
        ),
        (
            "b1",
            max_relative_error(&g.b1, &numeric_gradient(|b| f(&w1, b, &w2, &b2), &b1, 1e-6)),
        ),
        (
            "w2",
            max_relative_error(&g.w2, &numeric_gradient(|w| f(&w1, &b1, w, &b2), &w2, 1e-6)),
        ),
        (
            "b2",
            max_relative_error(&g.b2, &numeric_gradient(|b| f(&w1, &b1, &w2, b), &b2, 1e-6)),
        ),
    ];
    for (name, (err, at)) in checks {
        assert!(
            err < 1e-6,
            "∂/∂{name} against central differences: relative error {err:.2e} at {at}"
        );
    }
}

#[test]
fn the_training_example_learns_iris() {
    let config = train::Config::default();
    let mut seen = 0;
    let (data, _, history) = train::train(&config, |_, _| seen += 1).unwrap();
    assert_eq!((data.x_train.nrows(), data.x_test.nrows()), (120, 30));
    assert_eq!((seen, history.len()), (config.epochs, config.epochs));
    let (first, last) = (history[0], history[history.len() - 1]);
    assert!(
        last.train_loss < first.train_loss / 5.0,
        "{first:?} → {last:?}"
    );
    assert!(last.train_accuracy >= 0.95, "{last:?}");
    assert!(last.test_accuracy >= 0.9, "{last:?}");
}

#[test]
fn a_recorded_tape_draws_itself_with_its_cotangents() {
    let (x, y) = (matrix(3, 2, 50), matrix(3, 1, 51));
    let (w, b) = (matrix(2, 1, 52), Array1::from_elem(1, 0.1));
    let recorded = quickstart::LossTape::record(&w, &b, &x, &y).unwrap();
    let cotangents = recorded
        .backward_dense(quickstart::LossTape::OUTPUT, AnyTensor::scalar(1.0))
        .unwrap();
    let dot = recorded.to_dot_with(&cotangents);
    for node in quickstart::LossTape::NODES {
        assert!(
            dot.contains(&format!("n{} [label=\"{}: ", node.id, node.id)),
            "{dot}"
        );
        for p in node.parents {
            assert!(dot.contains(&format!("n{p} -> n{};", node.id)), "{dot}");
        }
    }
    // The output's cotangent is the seed; x is #[no_grad] and not reached; w's shape.
    assert!(dot.contains(r"7: mse\nscalar\n‖ḡ‖ = 1.0000"), "{dot}");
    assert!(dot.contains(r"2: x = input\n[3 × 2]\n‖ḡ‖ —"), "{dot}");
    assert_eq!(
        tape::graphviz::to_dot(quickstart::LossTape::NODES, quickstart::LossTape::OUTPUT)
            .lines()
            .count(),
        recorded.to_dot().lines().count()
    );
}
