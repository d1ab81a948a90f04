//! The benchmark workloads: each as a `#[differentiable]` function, the same gradient written
//! by hand with ndarray (as tightly as a careful engineer would: fused loops, buffers reused
//! in place), and fixed-seed inputs with values in [-0.5, 0.5].
//!
//! Shared by `benches/grad_vs_hand.rs` (speed), `benches/allocations.rs` and
//! `tests/allocations.rs` (heap use), and `peers/benches` (the same workloads on candle).

#![allow(dead_code)]

use ndarray::{Array1, Array2, Axis, Ix1, Ix2, Zip};
use tape::prelude::*;

/// A fixed-seed matrix with values in [-0.5, 0.5).
pub fn matrix(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    tape::gradcheck::sample(&[rows, cols], seed, -0.5, 0.5)
        .into_dimensionality::<Ix2>()
        .expect("2-d")
}

/// A fixed-seed vector with values in [-0.5, 0.5).
pub fn vector(len: usize, seed: u64) -> Array1<f64> {
    tape::gradcheck::sample(&[len], seed, -0.5, 0.5)
        .into_dimensionality::<Ix1>()
        .expect("1-d")
}

// ---------------------------------------------------------------------------------------------
// W1 mlp: h = tanh(X·W1 + b1); z = h·W2 + b2; loss = mean softmax cross-entropy(z, Y).

/// W1's loss.
#[differentiable]
pub fn mlp(
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] y: &Array2<f64>,
) -> f64 {
    let h = tanh(&(x.dot(w1) + b1));
    let z = h.dot(w2) + b2;
    cross_entropy(&z, y)
}

/// W1's inputs: X[64×784], W1[784×128], b1[128], W2[128×10], b2[10], Y one-hot [64×10].
pub struct Mlp {
    pub w1: Array2<f64>,
    pub b1: Array1<f64>,
    pub w2: Array2<f64>,
    pub b2: Array1<f64>,
    pub x: Array2<f64>,
    pub y: Array2<f64>,
}

impl Mlp {
    /// The fixed-seed inputs.
    pub fn new() -> Mlp {
        Mlp::with_sizes(64, 784, 128, 10)
    }

    /// Inputs of other sizes: batch, inputs, hidden units, classes.
    pub fn with_sizes(batch: usize, inputs: usize, hidden: usize, classes: usize) -> Mlp {
        Mlp {
            w1: matrix(inputs, hidden, 1),
            b1: vector(hidden, 2),
            w2: matrix(hidden, classes, 3),
            b2: vector(classes, 4),
            x: matrix(batch, inputs, 5),
            y: Array2::from_shape_fn((batch, classes), |(i, j)| {
                if j == (i * 7) % classes { 1.0 } else { 0.0 }
            }),
        }
    }

    /// The forward pass alone (the annotated function).
    pub fn forward(&self) -> f64 {
        mlp(&self.w1, &self.b1, &self.w2, &self.b2, &self.x, &self.y)
    }

    /// The generated gradient.
    pub fn generated(&self) -> MlpGrad {
        mlp_grad(&self.w1, &self.b1, &self.w2, &self.b2, &self.x, &self.y).expect("mlp_grad")
    }

    /// The gradient by hand: loss, ∂W1, ∂b1, ∂W2, ∂b2.
    pub fn by_hand(&self) -> (f64, Array2<f64>, Array1<f64>, Array2<f64>, Array1<f64>) {
        let (x, y, w1, w2) = (&self.x, &self.y, &self.w1, &self.w2);
        let mut h = x.dot(w1);
        Zip::from(h.rows_mut()).for_each(|mut row| {
            Zip::from(&mut row)
                .and(&self.b1)
                .for_each(|h, &b| *h = (*h + b).tanh());
        });
        let mut z = h.dot(w2);
        let rows = z.nrows() as f64;
        let mut loss = 0.0;
        // z becomes ∂L/∂z = (softmax(z)·Σy − y)/B, row by row, in place.
        Zip::from(z.rows_mut())
            .and(y.rows())
            .for_each(|mut zr, yr| {
                Zip::from(&mut zr).and(&self.b2).for_each(|z, &b| *z += b);
                let m = zr.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
                let lse = m + zr.fold(0.0, |s, &v| s + (v - m).exp()).ln();
                let mass = yr.sum();
                Zip::from(&mut zr).and(&yr).for_each(|z, &t| {
                    loss -= t * (*z - lse);
                    *z = ((*z - lse).exp() * mass - t) / rows;
                });
            });
        let gw2 = h.t().dot(&z);
        let gb2 = z.sum_axis(Axis(0));
        let mut dh = z.dot(&w2.t());
        Zip::from(&mut dh)
            .and(&h)
            .for_each(|d, &h| *d *= 1.0 - h * h);
        let gw1 = x.t().dot(&dh);
        let gb1 = dh.sum_axis(Axis(0));
        (loss / rows, gw1, gb1, gw2, gb2)
    }
}

// ---------------------------------------------------------------------------------------------
// W2 chain: y = x; 64 times y = tanh(y ⊙ a + b) ⊙ x; loss = Σ y.

/// W2's loss.
#[differentiable]
pub fn chain(x: &Array1<f64>, a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    const STEPS: usize = 64;
    let mut y = x.clone();
    for _ in 0..STEPS {
        y = tanh(&(&y * a + b)) * x;
    }
    y.sum()
}

/// W2's inputs: x, a, b of length 16.
pub struct Chain {
    pub x: Array1<f64>,
    pub a: Array1<f64>,
    pub b: Array1<f64>,
}

impl Chain {
    /// The fixed-seed inputs.
    pub fn new() -> Chain {
        Chain {
            x: vector(16, 11),
            a: vector(16, 12),
            b: vector(16, 13),
        }
    }

    /// The forward pass alone.
    pub fn forward(&self) -> f64 {
        chain(&self.x, &self.a, &self.b)
    }

    /// The generated gradient.
    pub fn generated(&self) -> ChainGrad {
        chain_grad(&self.x, &self.a, &self.b).expect("chain_grad")
    }

    /// The gradient by hand: one fused pass per step each way, the steps' tanh kept in one
    /// buffer.
    pub fn by_hand(&self) -> (f64, Array1<f64>, Array1<f64>, Array1<f64>) {
        const STEPS: usize = 64;
        let (x, a, b) = (&self.x, &self.a, &self.b);
        let n = x.len();
        // ts[k] = tanh(y_k ⊙ a + b); y_{k+1} = ts[k] ⊙ x.
        let mut ts = Array2::<f64>::zeros((STEPS, n));
        let mut y = x.clone();
        for k in 0..STEPS {
            Zip::from(ts.row_mut(k))
                .and(&mut y)
                .and(a)
                .and(b)
                .and(x)
                .for_each(|t, y, &a, &b, &x| {
                    *t = (*y * a + b).tanh();
                    *y = *t * x;
                });
        }
        let value = y.sum();
        let (mut gx, mut ga, mut gb) = (Array1::zeros(n), Array1::zeros(n), Array1::zeros(n));
        let mut gy = Array1::<f64>::ones(n);
        for k in (0..STEPS).rev() {
            let t = ts.row(k);
            let prev = if k == 0 { x.view() } else { ts.row(k - 1) };
            // y_k = ts[k−1] ⊙ x (or x itself for k = 0).
            for i in 0..n {
                let y_k = if k == 0 { x[i] } else { prev[i] * x[i] };
                gx[i] += gy[i] * t[i];
                let gu = gy[i] * x[i] * (1.0 - t[i] * t[i]);
                ga[i] += gu * y_k;
                gb[i] += gu;
                gy[i] = gu * a[i];
            }
        }
        gx += &gy;
        (value, gx, ga, gb)
    }
}

// ---------------------------------------------------------------------------------------------
// W3 rosenbrock: Σ_{i<31} 100(x_{i+1} − x_i²)² + (1 − x_i)² on 32 values, x as a [32] array.

/// W3's loss.
#[differentiable]
pub fn rosenbrock(x: &Array1<f64>) -> f64 {
    let mut total = 0.0;
    for i in 0..31 {
        let a = x[i + 1] - x[i] * x[i];
        let b = 1.0 - x[i];
        total += 100.0 * a * a + b * b;
    }
    total
}

/// W3's input.
pub struct Rosenbrock {
    pub x: Array1<f64>,
}

impl Rosenbrock {
    /// The fixed-seed input.
    pub fn new() -> Rosenbrock {
        Rosenbrock { x: vector(32, 21) }
    }

    /// The forward pass alone.
    pub fn forward(&self) -> f64 {
        rosenbrock(&self.x)
    }

    /// The generated gradient.
    pub fn generated(&self) -> RosenbrockGrad {
        rosenbrock_grad(&self.x).expect("rosenbrock_grad")
    }

    /// The gradient by hand: one loop.
    pub fn by_hand(&self) -> (f64, Array1<f64>) {
        let x = self.x.as_slice().expect("contiguous");
        let mut g = Array1::zeros(x.len());
        let mut total = 0.0;
        for i in 0..x.len() - 1 {
            let a = x[i + 1] - x[i] * x[i];
            let b = 1.0 - x[i];
            total += 100.0 * a * a + b * b;
            g[i] += -400.0 * a * x[i] - 2.0 * b;
            g[i + 1] += 200.0 * a;
        }
        (total, g)
    }
}

// ---------------------------------------------------------------------------------------------
// W4 matmul: loss = Σ tanh(X·W), gradient for W.

/// W4's loss.
#[differentiable]
pub fn matmul(w: &Array2<f64>, #[no_grad] x: &Array2<f64>) -> f64 {
    tanh(&x.dot(w)).sum()
}

/// W4's inputs: X[256×512], W[512×512].
pub struct Matmul {
    pub w: Array2<f64>,
    pub x: Array2<f64>,
}

impl Matmul {
    /// The fixed-seed inputs.
    pub fn new() -> Matmul {
        Matmul::with_sizes(256, 512)
    }

    /// Inputs of other sizes: X[rows×n], W[n×n].
    pub fn with_sizes(rows: usize, n: usize) -> Matmul {
        Matmul {
            w: matrix(n, n, 31),
            x: matrix(rows, n, 32),
        }
    }

    /// The forward pass alone.
    pub fn forward(&self) -> f64 {
        matmul(&self.w, &self.x)
    }

    /// The generated gradient.
    pub fn generated(&self) -> MatmulGrad {
        matmul_grad(&self.w, &self.x).expect("matmul_grad")
    }

    /// The gradient by hand: tanh and its derivative in place, one matmul each way.
    pub fn by_hand(&self) -> (f64, Array2<f64>) {
        let mut z = self.x.dot(&self.w);
        let mut total = 0.0;
        z.mapv_inplace(|v| {
            let t = v.tanh();
            total += t;
            1.0 - t * t
        });
        (total, self.x.t().dot(&z))
    }
}
