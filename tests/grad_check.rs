//! Every op through `#[differentiable]`: the generated gradient against a hand-derived one
//! (the derivative is stated next to each function) and against central differences in f64.

mod common;

use common::*;
use tape::prelude::*;

/// One differentiable function per elementwise unary op, `f(x) = Σ op(x)`, with its
/// derivative `op′`: the gradient is `op′(x)` elementwise.
macro_rules! unary_cases {
    ($($case:ident: |$x:ident| $body:expr, derivative $d:expr, domain $lo:literal..$hi:literal;)*) => {$(
        mod $case {
            use super::*;

            #[differentiable]
            pub fn f($x: &Array1<f64>) -> f64 {
                let y = $body;
                y.sum()
            }

            /// The same body in f32.
            #[differentiable]
            pub fn f32($x: &Array1<f32>) -> f32 {
                let y = $body;
                y.sum()
            }

            #[test]
            fn matches_analytic_and_fd() {
                let x = vec1(7, 1, $lo, $hi);
                let g = f_grad(&x).unwrap();
                assert_eq!(g.value, f(&x));
                let derivative: fn(f64) -> f64 = $d;
                check_analytic(stringify!($case), &g.$x, &x.mapv(derivative));
                check_fd(stringify!($case), &g.$x, &x, f);
                // f32: within a few f32 roundings of the f64 derivative.
                let x32 = x.mapv(|v| v as f32);
                let g32 = f32_grad(&x32).unwrap();
                assert_eq!(g32.value, f32(&x32));
                let (err, at) = tape::gradcheck::max_relative_error(&g32.$x.mapv(f64::from), &x32.mapv(|v| derivative(f64::from(v))));
                assert!(err < 1e-5, "{} in f32: relative error {err:e} at {at}", stringify!($case));
            }
        }
    )*};
}

unary_cases! {
    // exp′ = exp
    exp_method: |x| x.exp(), derivative |v| v.exp(), domain -2.0..2.0;
    exp_function: |x| exp(x), derivative |v| v.exp(), domain -2.0..2.0;
    // ln′ = 1/x
    ln_method: |x| x.ln(), derivative |v| 1.0 / v, domain 0.1..3.0;
    log_function: |x| log(x), derivative |v| 1.0 / v, domain 0.1..3.0;
    // sqrt′ = 1/(2√x)
    sqrt: |x| x.sqrt(), derivative |v| 0.5 / v.sqrt(), domain 0.1..3.0;
    // (x³)′ = 3x²
    powi: |x| x.powi(3), derivative |v| 3.0 * v * v, domain -2.0..2.0;
    // (x^2.5)′ = 2.5·x^1.5
    powf: |x| x.powf(2.5), derivative |v| 2.5 * v.powf(1.5), domain 0.1..2.0;
    // |x|′ = sign x
    abs: |x| x.abs(), derivative |v| v.signum(), domain -2.0..2.0;
    // sin′ = cos, cos′ = −sin
    sin: |x| x.sin(), derivative |v| v.cos(), domain -3.0..3.0;
    cos: |x| cos(x), derivative |v| -v.sin(), domain -3.0..3.0;
    // tanh′ = 1 − tanh²
    tanh: |x| tanh(x), derivative |v| 1.0 - v.tanh().powi(2), domain -2.0..2.0;
    // σ′ = σ(1 − σ)
    sigmoid: |x| sigmoid(x), derivative |v| { let s = 1.0 / (1.0 + (-v).exp()); s * (1.0 - s) }, domain -4.0..4.0;
    // relu′ = [x > 0]
    relu: |x| relu(x), derivative |v| if v > 0.0 { 1.0 } else { 0.0 }, domain -2.0..2.0;
    // softplus′ = σ
    softplus: |x| softplus(x), derivative |v| 1.0 / (1.0 + (-v).exp()), domain -4.0..4.0;
    // gelu′ = ½(1 + t) + ½x(1 − t²)·k(1 + 3cx²), t = tanh(k(x + cx³))
    gelu: |x| gelu(x), derivative |v| {
        let (k, c) = ((2.0 / std::f64::consts::PI).sqrt(), 0.044715);
        let t = (k * (v + c * v * v * v)).tanh();
        0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * k * (1.0 + 3.0 * c * v * v)
    }, domain -3.0..3.0;
    // (−x)′ = −1
    neg: |x| -x, derivative |_v| -1.0, domain -2.0..2.0;
    // clamp′ = [lo < x < hi]
    clamp: |x| x.clamp(-0.5, 0.5), derivative |v| if v > -0.5 && v < 0.5 { 1.0 } else { 0.0 }, domain -1.0..1.0;
}

// f = Σ (a + b)(a − b)/b = Σ a²/b − b:  ∂f/∂a = 2a/b,  ∂f/∂b = −a²/b² − 1
#[differentiable]
fn arith(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    ((a + b) * (a - b) / b).sum()
}

#[test]
fn arithmetic() {
    let (a, b) = (vec1(5, 2, -1.0, 1.0), vec1(5, 3, 0.5, 2.0));
    let g = arith_grad(&a, &b).unwrap();
    assert_eq!(g.value, arith(&a, &b));
    check_analytic("arith a", &g.a, &(2.0 * &a / &b));
    check_analytic("arith b", &g.b, &(-(&a * &a) / (&b * &b) - 1.0));
    check_fd("arith a", &g.a, &a, |a| arith(a, &b));
    check_fd("arith b", &g.b, &b, |b| arith(&a, b));
}

// f = Σᵢ (−2s·xᵢ + s/4) = −2s·Σx + n·s/4:  ∂f/∂x = −2s,  ∂f/∂s = −2Σx + n/4
#[differentiable]
fn scalar_mixes(x: &Array1<f64>, s: f64) -> f64 {
    (-(2.0 * x) * s + s / 4.0).sum()
}

#[test]
fn scalar_array_mixes() {
    let (x, s) = (vec1(6, 4, -1.0, 1.0), 0.7);
    let g = scalar_mixes_grad(&x, s).unwrap();
    check_analytic("mixes x", &g.x, &Array1::from_elem(6, -2.0 * s));
    check_analytic_scalar("mixes s", g.s, -2.0 * x.sum() + 6.0 / 4.0);
    check_fd("mixes x", &g.x, &x, |x| scalar_mixes(x, s));
    check_fd_scalar("mixes s", g.s, s, |s| scalar_mixes(&x, s));
}

// f(x, y) = tanh(x·y) + exp(x)/y − x^3 on scalars:
// ∂f/∂x = (1 − tanh²(xy))·y + exp(x)/y − 3x²,  ∂f/∂y = (1 − tanh²(xy))·x − exp(x)/y²
#[differentiable]
fn scalars(x: f64, y: f64) -> f64 {
    tanh(x * y) + x.exp() / y - x.powi(3)
}

#[test]
fn scalar_functions() {
    let (x, y) = (0.3, -1.7);
    let g = scalars_grad(x, y).unwrap();
    assert_eq!(g.value, scalars(x, y));
    let t = (x * y).tanh();
    check_analytic_scalar(
        "scalars x",
        g.x,
        (1.0 - t * t) * y + x.exp() / y - 3.0 * x * x,
    );
    check_analytic_scalar("scalars y", g.y, (1.0 - t * t) * x - x.exp() / (y * y));
    check_fd_scalar("scalars x", g.x, x, |x| scalars(x, y));
    check_fd_scalar("scalars y", g.y, y, |y| scalars(x, y));
}

// f = Σ max(a, b) + Σ min(a, 0.1):  ∂f/∂a = [a > b] + [a < 0.1],  ∂f/∂b = [b > a]
#[differentiable]
fn compare(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    (maximum(a, b) + minimum(a, 0.1_f64)).sum()
}

#[test]
fn maximum_minimum() {
    let (a, b) = (vec1(8, 5, -1.0, 1.0), vec1(8, 6, -1.0, 1.0));
    let g = compare_grad(&a, &b).unwrap();
    let ind = |c: bool| if c { 1.0 } else { 0.0 };
    let da = ndarray::Zip::from(&a)
        .and(&b)
        .map_collect(|&a, &b| ind(a > b) + ind(a < 0.1));
    let db = ndarray::Zip::from(&a)
        .and(&b)
        .map_collect(|&a, &b| ind(b > a));
    check_analytic("maximum a", &g.a, &da);
    check_analytic("maximum b", &g.b, &db);
    check_fd("maximum a", &g.a, &a, |a| compare(a, &b));
    check_fd("maximum b", &g.b, &b, |b| compare(&a, b));
}

// f = Σ (A·B)ᵢⱼ Wᵢⱼ:  ∂f/∂A = W·Bᵀ,  ∂f/∂B = Aᵀ·W
#[differentiable]
fn matmul(a: &Array2<f64>, b: &Array2<f64>, #[no_grad] w: &Array2<f64>) -> f64 {
    (a.dot(b) * w).sum()
}

#[test]
fn matrix_matrix() {
    let (a, b, w) = (
        mat2(3, 4, 7, -1.0, 1.0),
        mat2(4, 2, 8, -1.0, 1.0),
        mat2(3, 2, 9, -1.0, 1.0),
    );
    let g = matmul_grad(&a, &b, &w).unwrap();
    check_analytic("dot a", &g.a, &w.dot(&b.t()));
    check_analytic("dot b", &g.b, &a.t().dot(&w));
    check_fd("dot a", &g.a, &a, |a| matmul(a, &b, &w));
    check_fd("dot b", &g.b, &b, |b| matmul(&a, b, &w));
}

// f = u·(A·x) + (x·Aᵀ)·u − x·x with the free-function spellings:
// ∂f/∂A = 2 u⊗x,  ∂f/∂x = 2 Aᵀu − 2x,  ∂f/∂u = 2 A·x
#[differentiable]
fn vectors(a: &Array2<f64>, x: &Array1<f64>, u: &Array1<f64>) -> f64 {
    let ax = a.dot(x);
    let xat = dot(x, &transpose(a));
    u.dot(&ax) + xat.dot(u) - x.dot(x)
}

#[test]
fn matrix_vector_and_vector_vector() {
    let (a, x, u) = (
        mat2(3, 4, 10, -1.0, 1.0),
        vec1(4, 11, -1.0, 1.0),
        vec1(3, 12, -1.0, 1.0),
    );
    let g = vectors_grad(&a, &x, &u).unwrap();
    assert_eq!(g.value, vectors(&a, &x, &u));
    let outer = Array2::from_shape_fn((3, 4), |(i, j)| 2.0 * u[i] * x[j]);
    check_analytic("mv a", &g.a, &outer);
    check_analytic("mv x", &g.x, &(2.0 * a.t().dot(&u) - 2.0 * &x));
    check_analytic("mv u", &g.u, &(2.0 * a.dot(&x)));
    check_fd("mv a", &g.a, &a, |a| vectors(a, &x, &u));
    check_fd("mv x", &g.x, &x, |x| vectors(&a, x, &u));
    check_fd("mv u", &g.u, &u, |u| vectors(&a, &x, u));
}

// f = Σⱼ wⱼ·Σᵢ xᵢⱼ + Σᵢ vᵢ·meanⱼ xᵢⱼ + mean(x) + Σ xᵀ:
// ∂f/∂xᵢⱼ = wⱼ + vᵢ/n + 1/(mn) + 1
#[differentiable]
fn reductions(x: &Array2<f64>, #[no_grad] w: &Array1<f64>, #[no_grad] v: &Array1<f64>) -> f64 {
    let cols = x.sum_axis(Axis(0));
    let rows = x.mean_axis(Axis(1)).unwrap();
    (cols * w).sum() + (rows * v).sum() + x.mean().unwrap() + sum(&x.t())
}

#[test]
fn sums_and_means() {
    let (x, w, v) = (
        mat2(3, 4, 13, -1.0, 1.0),
        vec1(4, 14, -1.0, 1.0),
        vec1(3, 15, -1.0, 1.0),
    );
    let g = reductions_grad(&x, &w, &v).unwrap();
    assert_eq!(g.value, reductions(&x, &w, &v));
    let expected = Array2::from_shape_fn((3, 4), |(i, j)| w[j] + v[i] / 4.0 + 1.0 / 12.0 + 1.0);
    check_analytic("reductions", &g.x, &expected);
    check_fd("reductions", &g.x, &x, |x| reductions(x, &w, &v));
}

// f = Σ w ⊙ softmax(x):  ∂f/∂x = s ⊙ (w − ⟨w, s⟩) per row
#[differentiable]
fn softmax_weighted(x: &Array2<f64>, #[no_grad] w: &Array2<f64>) -> f64 {
    (softmax(x) * w).sum()
}

// f = Σ w ⊙ log_softmax(x):  ∂f/∂x = w − s·Σw per row
#[differentiable]
fn log_softmax_weighted(x: &Array2<f64>, #[no_grad] w: &Array2<f64>) -> f64 {
    (log_softmax(x) * w).sum()
}

// f = Σᵢ vᵢ·logsumexp(xᵢ):  ∂f/∂x = vᵢ·s
#[differentiable]
fn logsumexp_weighted(x: &Array2<f64>, #[no_grad] v: &Array1<f64>) -> f64 {
    (logsumexp(x) * v).sum()
}

#[test]
fn softmax_family() {
    let (x, w, v) = (
        mat2(3, 5, 16, -3.0, 3.0),
        mat2(3, 5, 17, -1.0, 1.0),
        vec1(3, 18, -1.0, 1.0),
    );
    let s = softmax(&x);
    let mut ds = s.clone();
    let mut dl = w.clone();
    let mut de = s.clone();
    for i in 0..3 {
        let inner = (&w.row(i) * &s.row(i)).sum();
        let total = w.row(i).sum();
        for j in 0..5 {
            ds[[i, j]] = s[[i, j]] * (w[[i, j]] - inner);
            dl[[i, j]] = w[[i, j]] - s[[i, j]] * total;
            de[[i, j]] = v[i] * s[[i, j]];
        }
    }
    let g = softmax_weighted_grad(&x, &w).unwrap();
    check_analytic("softmax", &g.x, &ds);
    check_fd("softmax", &g.x, &x, |x| softmax_weighted(x, &w));
    let g = log_softmax_weighted_grad(&x, &w).unwrap();
    check_analytic("log_softmax", &g.x, &dl);
    check_fd("log_softmax", &g.x, &x, |x| log_softmax_weighted(x, &w));
    let g = logsumexp_weighted_grad(&x, &v).unwrap();
    check_analytic("logsumexp", &g.x, &de);
    check_fd("logsumexp", &g.x, &x, |x| logsumexp_weighted(x, &v));
}

// L = mse(p, t):  ∂L/∂p = 2/N·(p − t),  ∂L/∂t = −2/N·(p − t)
#[differentiable]
fn mse_loss(p: &Array2<f64>, t: &Array2<f64>) -> f64 {
    mse(p, t)
}

// L = cross_entropy(z, y) with one-hot y over B rows:  ∂L/∂z = (softmax(z) − y)/B
#[differentiable]
fn ce_loss(z: &Array2<f64>, #[no_grad] y: &Array2<f64>) -> f64 {
    cross_entropy(z, y)
}

#[test]
fn losses() {
    let (p, t) = (mat2(4, 3, 19, -1.0, 1.0), mat2(4, 3, 20, -1.0, 1.0));
    let g = mse_loss_grad(&p, &t).unwrap();
    check_analytic("mse p", &g.p, &((&p - &t) * (2.0 / 12.0)));
    check_analytic("mse t", &g.t, &((&t - &p) * (2.0 / 12.0)));
    check_fd("mse p", &g.p, &p, |p| mse_loss(p, &t));
    check_fd("mse t", &g.t, &t, |t| mse_loss(&p, t));

    let z = mat2(4, 3, 21, -2.0, 2.0);
    let y = Array2::from_shape_fn((4, 3), |(i, j)| if j == i % 3 { 1.0 } else { 0.0 });
    let g = ce_loss_grad(&z, &y).unwrap();
    assert_eq!(g.value, ce_loss(&z, &y));
    check_analytic("cross_entropy", &g.z, &((softmax(&z) - &y) / 4.0));
    check_fd("cross_entropy", &g.z, &z, |z| ce_loss(z, &y));
}

// The same model in f32: gradients agree with the f64 analytic ones to f32 precision.
#[differentiable]
fn mlp32(
    w: &Array2<f32>,
    b: &Array1<f32>,
    #[no_grad] x: &Array2<f32>,
    #[no_grad] y: &Array2<f32>,
) -> f32 {
    let h = tanh(&(x.dot(w) + b));
    mse(&h, y)
}

#[differentiable]
fn mlp64(
    w: &Array2<f64>,
    b: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] y: &Array2<f64>,
) -> f64 {
    let h = tanh(&(x.dot(w) + b));
    mse(&h, y)
}

#[test]
fn f32_matches_f64() {
    let (w, b) = (mat2(3, 2, 22, -1.0, 1.0), vec1(2, 23, -1.0, 1.0));
    let (x, y) = (mat2(5, 3, 24, -1.0, 1.0), mat2(5, 2, 25, -1.0, 1.0));
    let g64 = mlp64_grad(&w, &b, &x, &y).unwrap();
    let f = |a: &Array2<f64>| a.mapv(|v| v as f32);
    let (w32, b32, x32, y32) = (f(&w), b.mapv(|v| v as f32), f(&x), f(&y));
    let g32 = mlp32_grad(&w32, &b32, &x32, &y32).unwrap();
    assert_eq!(g32.value, mlp32(&w32, &b32, &x32, &y32));
    assert!(
        (f64::from(g32.value) - g64.value).abs() < 1e-6,
        "{} vs {}",
        g32.value,
        g64.value
    );
    let (err, _) = tape::gradcheck::max_relative_error(&g32.w.mapv(f64::from), &g64.w);
    assert!(err < 1e-5, "f32 gradient off by relative {err:e}");
    let (err, _) = tape::gradcheck::max_relative_error(&g32.b.mapv(f64::from), &g64.b);
    assert!(err < 1e-5, "f32 gradient off by relative {err:e}");
    check_fd("mlp64 w", &g64.w, &w, |w| mlp64(w, &b, &x, &y));
}

/// Every binary, linear-algebra, reduction, softmax and loss op in one function, written once
/// for each float type: the f32 gradients agree with the f64 ones to f32 precision, and the
/// f64 ones with central differences.
macro_rules! composite {
    ($name:ident, $f:ty) => {
        #[differentiable]
        fn $name(a: &Array2<$f>, b: &Array2<$f>, v: &Array1<$f>, #[no_grad] y: &Array2<$f>) -> $f {
            let m = maximum(a, b) - minimum(a, v) / 2.0;
            let c = m.clamp(-0.8, 0.8);
            let z = c.dot(&b.t()) + v.sum_axis(Axis(0)) - a.mean_axis(Axis(1)).unwrap().sum();
            let p = softmax(&z) + log_softmax(&z) / 4.0;
            let l = logsumexp(&z).sum() / 8.0 + v.dot(v) + -b.mean().unwrap();
            let u = mse(&p.dot(&a.sum_axis(Axis(1)).t()), &a.sum_axis(Axis(1)));
            l + u + cross_entropy(&z, y)
        }
    };
}

composite!(composite64, f64);
composite!(composite32, f32);

#[test]
fn every_op_in_f32_and_f64() {
    let (a, b) = (mat2(3, 3, 30, -1.0, 1.0), mat2(3, 3, 31, -1.0, 1.0));
    let v = vec1(3, 32, -1.0, 1.0);
    let y = Array2::from_shape_fn((3, 3), |(i, j)| if i == j { 1.0 } else { 0.0 });
    let g = composite64_grad(&a, &b, &v, &y).unwrap();
    assert_eq!(g.value, composite64(&a, &b, &v, &y));
    check_fd("composite a", &g.a, &a, |a| composite64(a, &b, &v, &y));
    check_fd("composite b", &g.b, &b, |b| composite64(&a, b, &v, &y));
    check_fd("composite v", &g.v, &v, |v| composite64(&a, &b, v, &y));

    let f = |m: &Array2<f64>| m.mapv(|x| x as f32);
    let (a32, b32, v32, y32) = (f(&a), f(&b), v.mapv(|x| x as f32), f(&y));
    let g32 = composite32_grad(&a32, &b32, &v32, &y32).unwrap();
    assert_eq!(g32.value, composite32(&a32, &b32, &v32, &y32));
    for (what, got, want) in [
        ("a", g32.a.mapv(f64::from), &g.a),
        ("b", g32.b.mapv(f64::from), &g.b),
    ] {
        let (err, at) = tape::gradcheck::max_relative_error(&got, want);
        assert!(
            err < 1e-5,
            "composite {what} in f32: relative error {err:e} at {at}"
        );
    }
    let (err, _) = tape::gradcheck::max_relative_error(&g32.v.mapv(f64::from), &g.v);
    assert!(err < 1e-5, "composite v in f32: relative error {err:e}");
}
