//! The recorded tape (`FTape`) and its backward family: the static tape's rows, reached-node
//! semantics, every method, and the seed engine's public vector.

mod common;

use common::*;
use std::collections::HashMap;
use tape::prelude::*;

// The seed engine's network: z1 = W1·x + b1, h = relu(z1), y = W2·h + b2, loss = Σ y.
#[differentiable]
fn seed_net(
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    x: &Array1<f64>,
) -> f64 {
    let z1 = w1.dot(x) + b1;
    let h = relu(&z1);
    let y = w2.dot(&h) + b2;
    y.sum()
}

/// W1, b1, W2, b2, x.
type SeedInputs = (
    Array2<f64>,
    Array1<f64>,
    Array2<f64>,
    Array1<f64>,
    Array1<f64>,
);

fn seed_inputs() -> SeedInputs {
    (
        array![[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]],
        array![0.1, 0.2, 0.3],
        array![[0.7, 0.8, 0.9]],
        array![0.4],
        array![0.5, 0.8],
    )
}

#[track_caller]
fn close<D: ndarray::Dimension>(what: &str, got: &Array<f64, D>, want: &Array<f64, D>) {
    let err = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        got.shape() == want.shape() && err < 1e-12,
        "{what}: got {got}, want {want} (max abs error {err:e})"
    );
}

fn any<D: ndarray::Dimension>(a: &Array<f64, D>) -> AnyTensor {
    AnyTensor::from(a.clone())
}

/// Checks the expected gradients of the seed vector, given by node id.
fn check_seed_grads(what: &str, grad: impl Fn(usize) -> AnyTensor) {
    let dim1 = |t: AnyTensor| t.into_dimensionality::<Ix1>().unwrap();
    let dim2 = |t: AnyTensor| t.into_dimensionality::<Ix2>().unwrap();
    close(
        &format!("{what} dW1"),
        &dim2(grad(0)),
        &array![[0.35, 0.56], [0.40, 0.64], [0.45, 0.72]],
    );
    close(
        &format!("{what} db1"),
        &dim1(grad(1)),
        &array![0.7, 0.8, 0.9],
    );
    close(
        &format!("{what} dW2"),
        &dim2(grad(2)),
        &array![[0.31, 0.67, 1.03]],
    );
    close(&format!("{what} db2"), &dim1(grad(3)), &array![1.0]);
    close(&format!("{what} dx"), &dim1(grad(4)), &array![0.76, 1.0]);
}

#[test]
fn the_seed_vector_through_every_method() {
    let (w1, b1, w2, b2, x) = seed_inputs();
    let g = seed_net_grad(&w1, &b1, &w2, &b2, &x).unwrap();
    assert!((g.value - 2.08).abs() < 1e-12, "loss {}", g.value);
    let by_id = [any(&g.w1), any(&g.b1), any(&g.w2), any(&g.b2), any(&g.x)];
    check_seed_grads("f_grad", |id| by_id[id].clone());

    assert_eq!(g.value, seed_net(&w1, &b1, &w2, &b2, &x));
    let t = SeedNetTape::record(&w1, &b1, &w2, &b2, &x).unwrap();
    assert_eq!(
        t.value(SeedNetTape::OUTPUT).unwrap().to_scalar(),
        Some(g.value)
    );
    let one = AnyTensor::scalar(1.0);
    let dense = t.backward_dense(SeedNetTape::OUTPUT, one.clone()).unwrap();
    check_seed_grads("backward_dense", |id| dense[id].clone().unwrap());
    let all = t
        .backward_dense_all(SeedNetTape::OUTPUT, one.clone())
        .unwrap();
    check_seed_grads("backward_dense_all", |id| all[id].clone());
    let sparse = t.backward_sparse(SeedNetTape::OUTPUT, one).unwrap();
    check_seed_grads("backward_sparse", |id| sparse[&id].clone());
    let plain = t.backward().unwrap();
    check_seed_grads("backward", |id| plain[&id].clone());
    assert_eq!(sparse, plain);
}

#[test]
fn the_static_tape_names_every_node() {
    type Row<'a> = (usize, Option<&'a str>, &'a str, &'a [usize], bool);
    let rows: Vec<Row<'_>> = SeedNetTape::NODES
        .iter()
        .map(|n| (n.id, n.name, n.op, n.parents, n.requires_grad))
        .collect();
    let expected: [Row<'_>; 11] = [
        (0, Some("w1"), "input", &[], true),
        (1, Some("b1"), "input", &[], true),
        (2, Some("w2"), "input", &[], true),
        (3, Some("b2"), "input", &[], true),
        (4, Some("x"), "input", &[], true),
        (5, None, "dot", &[0, 4], true),
        (6, Some("z1"), "add", &[5, 1], true),
        (7, Some("h"), "relu", &[6], true),
        (8, None, "dot", &[2, 7], true),
        (9, Some("y"), "add", &[8, 3], true),
        (10, None, "sum", &[9], true),
    ];
    assert_eq!(rows, expected);
    assert_eq!(SeedNetTape::OUTPUT, 10);
    for node in SeedNetTape::NODES {
        assert!(
            node.parents.iter().all(|&p| p < node.id),
            "node {} has a later parent",
            node.id
        );
    }
}

// A frozen input, a constant, an unused branch and a differentiable input.
// f = Σ (w·c)·2 with c frozen; `unused` = exp(w) never reaches the output.
#[differentiable]
fn frozen(w: &Array1<f64>, #[no_grad] c: &Array1<f64>) -> f64 {
    let _unused = w.exp();
    let p = w * c;
    let q = c * 2.0;
    (p * 2.0).sum() + q.sum()
}

#[test]
fn reached_nodes_and_frozen_nodes() {
    let (w, c) = (array![1.0, 2.0], array![3.0, -1.0]);
    let t = FrozenTape::record(&w, &c).unwrap();
    assert_eq!(
        t.value(FrozenTape::OUTPUT).unwrap().to_scalar(),
        Some(frozen(&w, &c))
    );
    let names: Vec<_> = FrozenTape::NODES
        .iter()
        .map(|n| (n.op, n.requires_grad))
        .collect();
    // w, c, exp, mul, const, mul(c, 2), const, mul(p, 2), sum, sum, add
    assert_eq!(
        names,
        [
            ("input", true),
            ("input", false),
            ("exp", true),
            ("mul", true),
            ("const", false),
            ("mul", false),
            ("const", false),
            ("mul", true),
            ("sum", true),
            ("sum", false),
            ("add", true)
        ]
    );
    let dense = t
        .backward_dense(FrozenTape::OUTPUT, AnyTensor::scalar(1.0))
        .unwrap();
    let reached: Vec<usize> = (0..dense.len()).filter(|&i| dense[i].is_some()).collect();
    // Reached: the output and the requires-grad nodes with a contribution; not `unused` (2),
    // not the frozen input (1) nor the frozen branch (4, 5, 6, 9).
    assert_eq!(reached, [0, 3, 7, 8, 10]);
    // ∂f/∂w = 2c
    assert_eq!(dense[0], Some(AnyTensor::from(array![6.0, -2.0])));
    // dense_all fills zeros of each node's shape.
    let all = t
        .backward_dense_all(FrozenTape::OUTPUT, AnyTensor::scalar(1.0))
        .unwrap();
    assert_eq!(all[1], AnyTensor::zeros(&[2]));
    assert_eq!(all[2], AnyTensor::zeros(&[2]));
    assert_eq!(all[9], AnyTensor::scalar(0.0));
}

#[test]
fn a_frozen_output_holds_its_seed_and_sends_nothing() {
    let t = FrozenTape::record(&array![1.0, 2.0], &array![3.0, -1.0]).unwrap();
    // Node 9 = Σ q, which depends only on the frozen c.
    let dense = t.backward_dense(9, AnyTensor::scalar(5.0)).unwrap();
    assert_eq!(dense[9], Some(AnyTensor::scalar(5.0)));
    assert!(dense.iter().enumerate().all(|(i, g)| i == 9 || g.is_none()));
}

#[test]
fn dense_from_a_one_hot_seed_equals_dense_all() {
    let (w1, b1, w2, b2, x) = seed_inputs();
    let t = SeedNetTape::record(&w1, &b1, &w2, &b2, &x).unwrap();
    let mut grads0: Vec<AnyTensor> = t.zero_grads();
    grads0[SeedNetTape::OUTPUT] = AnyTensor::scalar(1.0);
    let from = t.backward_dense_from(grads0).unwrap();
    let all = t
        .backward_dense_all(SeedNetTape::OUTPUT, AnyTensor::scalar(1.0))
        .unwrap();
    assert_eq!(from, all);
}

#[test]
fn several_outputs_seeded_at_once() {
    // Seeding z1 (node 6) with v and the loss with 1 gives, for b1, v + W2ᵀ⊙relu′ = v + [.7,.8,.9].
    let (w1, b1, w2, b2, x) = seed_inputs();
    let t = SeedNetTape::record(&w1, &b1, &w2, &b2, &x).unwrap();
    let mut grads0: Vec<AnyTensor> = t.zero_grads();
    grads0[SeedNetTape::OUTPUT] = AnyTensor::scalar(1.0);
    grads0[6] = AnyTensor::from(array![1.0, 10.0, 100.0]);
    let g = t.backward_dense_from(grads0).unwrap();
    close(
        "b1",
        &g[1].clone().into_dimensionality::<Ix1>().unwrap(),
        &array![1.7, 10.8, 100.9],
    );
}

#[test]
fn loop_over_the_first_n_nodes_touches_only_smaller_ids() {
    let (w1, b1, w2, b2, x) = seed_inputs();
    let t = SeedNetTape::record(&w1, &b1, &w2, &b2, &x).unwrap();
    let zeros: Vec<AnyTensor> = t.zero_grads();
    // Seed h (node 7) and the output; a loop over ids 7 … 0 ignores the output's seed.
    let mut acc = zeros.clone();
    acc[7] = AnyTensor::from(array![1.0, 1.0, 1.0]);
    acc[SeedNetTape::OUTPUT] = AnyTensor::scalar(1.0);
    let g = t.backward_dense_from_loop(8, acc.clone()).unwrap();
    for id in 8..g.len() {
        assert_eq!(g[id], acc[id], "node {id} changed");
    }
    // ∂(Σh)/∂b1 = relu′(z1) = 1
    close(
        "b1",
        &g[1].clone().into_dimensionality::<Ix1>().unwrap(),
        &array![1.0, 1.0, 1.0],
    );
    // One step at a time gives the same.
    let mut stepped = acc;
    for id in (0..8).rev() {
        t.backward_dense_from_step(&mut stepped, id).unwrap();
    }
    assert_eq!(stepped, g);
    // n = 0 changes nothing.
    assert_eq!(t.backward_dense_from_loop(0, zeros.clone()).unwrap(), zeros);
}

// An unused 1/x at x = 0: the unreached VJP never runs, so every gradient stays finite.
#[differentiable]
fn unused_reciprocal(x: &Array1<f64>) -> f64 {
    let r = 1.0 / x;
    let _unused = r.sum();
    (x * x).sum()
}

#[test]
fn unreached_vjps_never_run() {
    let t = UnusedReciprocalTape::record(&array![0.0, 2.0]).unwrap();
    assert_eq!(
        t.value(UnusedReciprocalTape::OUTPUT).unwrap().to_scalar(),
        Some(unused_reciprocal(&array![0.0, 2.0]))
    );
    let all = t
        .backward_dense_all(UnusedReciprocalTape::OUTPUT, AnyTensor::scalar(1.0))
        .unwrap();
    assert!(
        all.iter().all(|g| g.view().iter().all(|v| v.is_finite())),
        "{all:?}"
    );
    assert_eq!(all[0], AnyTensor::from(array![0.0, 4.0]));
}

// backward() agrees with f_grad on every parameter, on functions with broadcasting, scalars,
// reductions over axes and the softmax family.
#[differentiable]
fn mixed(
    w: &Array2<f64>,
    b: &Array1<f64>,
    s: f64,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] y: &Array2<f64>,
) -> f64 {
    let z = x.dot(w) + b;
    let p = softmax(&(&z * s));
    let m = p.sum_axis(Axis(1)).mean().unwrap();
    cross_entropy(&z, y) + m * s.powi(2) + logsumexp(&z).sum() / 4.0
}

#[test]
fn backward_agrees_with_f_grad() {
    let (w, b) = (mat2(3, 4, 1, -1.0, 1.0), vec1(4, 2, -1.0, 1.0));
    let x = mat2(5, 3, 3, -1.0, 1.0);
    let y = Array2::from_shape_fn((5, 4), |(i, j)| if j == i % 4 { 1.0 } else { 0.0 });
    let g = mixed_grad(&w, &b, 0.7, &x, &y).unwrap();
    let t = MixedTape::record(&w, &b, 0.7, &x, &y).unwrap();
    let back: HashMap<usize, AnyTensor> = t.backward().unwrap();
    assert_eq!(back[&0], AnyTensor::from(g.w.clone()));
    assert_eq!(back[&1], AnyTensor::from(g.b.clone()));
    assert_eq!(back[&2], AnyTensor::scalar(g.s));
    assert!(
        !back.contains_key(&3) && !back.contains_key(&4),
        "no_grad inputs are never reached"
    );
    assert_eq!(
        t.value(MixedTape::OUTPUT).unwrap(),
        AnyTensor::scalar(g.value)
    );
    check_fd("mixed w", &g.w, &w, |w| mixed(w, &b, 0.7, &x, &y));
}

// f32 tapes work the same way.
#[differentiable]
fn small32(x: &Array1<f32>) -> f32 {
    tanh(x).sum()
}

#[test]
fn f32_tapes() {
    let t = Small32Tape::record(&array![0.0_f32, 1.0]).unwrap();
    let back = t.backward().unwrap();
    let g = small32_grad(&array![0.0_f32, 1.0]).unwrap();
    assert_eq!(back[&0], AnyTensor::from(g.x));
    assert_eq!(small32(&array![0.0_f32]), 0.0);
}

// Every op through the recorded tape, whose VJPs run by the op's name (`dynamic::op_vjp`):
// its parameter gradients match `_grad`'s, which calls each VJP directly.
#[differentiable]
fn all_ops(a: &Array2<f64>, b: &Array2<f64>, v: &Array1<f64>, t: &Array2<f64>) -> f64 {
    let m = maximum(a, b) - minimum(a, v) / 2.0 + (-a) * b;
    let c = m.clamp(-0.8, 0.8);
    let z = c.dot(&b.t()) + v.sum_axis(Axis(0)) - a.mean_axis(Axis(1)).unwrap().sum();
    let p = softmax(&z) + log_softmax(&z) / 4.0;
    let l = logsumexp(&z).sum() / 8.0 + v.dot(v) + -b.mean().unwrap();
    let u = mse(&p.dot(&a.sum_axis(Axis(1)).t()), &a.sum_axis(Axis(1)));
    let pos = a.abs() + 0.5;
    let unary = exp(a) + ln(&pos) + sqrt(&pos) + a.sin() + a.cos() + tanh(a);
    let more = sigmoid(a) + relu(a) + softplus(a) + gelu(a) + a.exp() + a.tanh();
    let powers = a.powi(3) + pos.powf(1.5);
    l + u + cross_entropy(&z, t) + (unary + more + powers).sum() + v[1] * v[2]
}

#[test]
fn the_recorded_tape_runs_every_op() {
    let a = mat2(3, 3, 40, -1.0, 1.0);
    let b = mat2(3, 3, 41, -1.0, 1.0);
    let v = vec1(3, 42, -1.0, 1.0);
    let t = mat2(3, 3, 43, 0.0, 1.0);
    let g = all_ops_grad(&a, &b, &v, &t).unwrap();
    let recorded = AllOpsTape::record(&a, &b, &v, &t)
        .unwrap()
        .backward()
        .unwrap();
    let as2 = |id: usize| -> Array2<f64> {
        recorded[&id]
            .as_array()
            .clone()
            .into_dimensionality()
            .unwrap()
    };
    tape::gradcheck::assert_grad_close("∂/∂a", &as2(0), &g.a, 1e-13);
    tape::gradcheck::assert_grad_close("∂/∂b", &as2(1), &g.b, 1e-13);
    tape::gradcheck::assert_grad_close("∂/∂t", &as2(3), &g.t, 1e-13);
    let gv: Array1<f64> = recorded[&2]
        .as_array()
        .clone()
        .into_dimensionality()
        .unwrap();
    tape::gradcheck::assert_grad_close("∂/∂v", &gv, &g.v, 1e-13);
    check_fd("∂/∂a", &g.a, &a, |a| all_ops(a, &b, &v, &t));
}
