//! The matrix product behind `dot` of two matrices.
//!
//! By default ndarray's `dot` (matrixmultiply, one thread), with matrixmultiply's AVX-512
//! kernel turned on (its `avx512` feature, which ndarray leaves off; chosen at run time where
//! the CPU has AVX-512F, the FMA or SSE2 kernels elsewhere): 10–15% faster products on this
//! machine's W1 and W4 shapes, and being compiled Rust under `#[target_feature]` it clears the
//! vector registers' upper halves on return, so the code after it does not slow down as after
//! faer's. Two features change the kernel:
//!
//! - `faer`: products of matrices in standard or transposed layout go to faer's kernel, on one
//!   thread; small products and other layouts stay with ndarray.
//! - `blas`: ndarray's `dot` calls the system's OpenBLAS through CBLAS for `f32` and `f64`
//!   matrices whose rows or columns are contiguous (ndarray's `blas` feature; on Debian,
//!   `apt-get install libopenblas-dev`). OpenBLAS picks its thread count from
//!   `OPENBLAS_NUM_THREADS`.
//!
//! With both, faer's kernel is tried first.
//!
//! Why not faer by default: its kernel is faster per product (`BENCHMARKS.md`), but in a
//! portable build (SSE2) the code that runs after it is slower: W4's `tanh` loop took 2.9×
//! as long after faer's product as after matrixmultiply's (`perf`, 35% of the gradient's
//! time against 16%), as after a kernel that leaves the upper halves of the vector registers
//! in use, so that legacy SSE instructions pay for them. Built with
//! `-C target-cpu=native`, where the elementwise loops are AVX2 code too, the W1 and W4
//! gradients measured 11–13% faster with faer. And faer adds about a minute and a half to a
//! first release build on two cores.

use crate::float::Float;
use crate::workspace;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2};

/// Products with fewer multiply-adds than this stay with ndarray, whose overhead is smaller.
#[cfg(feature = "faer")]
const MIN_WORK: usize = 32 * 32 * 32;

/// `a · b` for `a: [m, k]`, `b: [k, n]` (the caller has checked that the inner sizes agree).
///
/// A large product is computed into a [`workspace`] buffer of its size
/// where the thread keeps one, by the same kernel as ndarray's `dot`, into the same layout.
pub fn matmul<F: Float>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Array2<F> {
    #[cfg(feature = "faer")]
    if let Some(out) = F::faer_matmul(a, b) {
        return out;
    }
    // `dot` writes a column-major result for two column-major operands: left to it.
    let column_major = a.strides()[0] == 1 && b.strides()[0] == 1;
    let (m, n) = (a.nrows(), b.ncols());
    if !column_major {
        if let Some(mut out) = workspace::take_matrix::<F>(m, n) {
            // β = 0: the kernel writes every element without reading the stale ones.
            general_mat_mul(F::one(), &a, &b, F::zero(), &mut out);
            return out;
        }
    }
    a.dot(&b)
}

/// The matrix product through faer, for `f32` and `f64`.
#[cfg(feature = "faer")]
pub(crate) mod faer_kernel {
    use faer::linalg::matmul::matmul;
    use faer::{Accum, MatMut, MatRef, Par};
    use ndarray::{Array2, ArrayView2};

    /// A faer view of an ndarray matrix stored contiguously, by rows or by columns.
    fn view<'a, T>(x: &ArrayView2<'a, T>) -> Option<MatRef<'a, T>> {
        let (m, n) = x.dim();
        if let Some(s) = x.to_slice() {
            return Some(MatRef::from_row_major_slice(s, m, n));
        }
        // Column-major (`x.t()` of a standard matrix): contiguous in memory order.
        let strides = x.strides();
        if strides[0] == 1 && (n <= 1 || strides[1] == m as isize) {
            let s = x.to_slice_memory_order()?;
            return Some(MatRef::from_column_major_slice(s, m, n));
        }
        None
    }

    macro_rules! faer_matmul {
        ($name:ident, $t:ty) => {
            /// `a · b` by faer on one thread, or `None` to leave it to ndarray.
            pub(crate) fn $name(
                a: ArrayView2<'_, $t>,
                b: ArrayView2<'_, $t>,
            ) -> Option<Array2<$t>> {
                let ((m, k), n) = (a.dim(), b.ncols());
                if m * k * n < super::MIN_WORK || m == 0 || n == 0 || k == 0 || b.nrows() != k {
                    return None;
                }
                let (fa, fb) = (view(&a)?, view(&b)?);
                // `Accum::Replace` writes every element without reading a kept buffer's.
                let mut out = crate::workspace::take_matrix::<$t>(m, n)
                    .unwrap_or_else(|| Array2::zeros((m, n)));
                let dst = MatMut::from_row_major_slice_mut(out.as_slice_mut()?, m, n);
                matmul(dst, Accum::Replace, fa, fb, 1.0, Par::Seq);
                Some(out)
            }
        };
    }

    faer_matmul!(matmul_f32, f32);
    faer_matmul!(matmul_f64, f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn matrix(m: usize, n: usize, seed: f64) -> Array2<f64> {
        Array2::from_shape_fn((m, n), |(i, j)| ((i * n + j) as f64 * 0.37 + seed).sin())
    }

    /// The textbook triple loop, independent of every kernel.
    fn naive(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols()).map(|p| a[[i, p]] * b[[p, j]]).sum()
        })
    }

    #[test]
    fn agrees_with_the_textbook_product_in_every_layout() {
        // Whatever kernel the features select (matrixmultiply, faer or OpenBLAS), against the
        // triple loop.
        for &(m, k, n) in &[
            (64, 80, 48),
            (3, 4, 5),
            (40, 1, 40),
            (0, 50, 50),
            (50, 50, 1),
        ] {
            let a = matrix(m, k, 0.1);
            let b = matrix(k, n, 0.2);
            let at = matrix(k, m, 0.3);
            let bt = matrix(n, k, 0.4);
            for (x, y) in [
                (a.view(), b.view()),
                (at.t(), b.view()),
                (a.view(), bt.t()),
                (at.t(), bt.t()),
            ] {
                let (got, want) = (matmul(x, y), naive(x, y));
                assert_eq!(got.dim(), want.dim());
                let worst = (&got - &want).iter().fold(0.0_f64, |w, d| w.max(d.abs()));
                assert!(worst < 1e-12, "{m}x{k}x{n}: {worst:e}");
            }
        }
        // A strided view (every other row): faer leaves it to ndarray, OpenBLAS copies it.
        let a = matrix(128, 64, 0.5);
        let rows = a.slice_axis(ndarray::Axis(0), ndarray::Slice::new(0, None, 2));
        let b = matrix(64, 64, 0.6);
        let worst = (&matmul(rows, b.view()) - &naive(rows, b.view()))
            .iter()
            .fold(0.0_f64, |w, d| w.max(d.abs()));
        assert!(worst < 1e-12, "strided rows: {worst:e}");
    }

    #[test]
    fn a_kept_buffer_of_stale_values_gives_the_same_product_as_dot() {
        // 128·160 elements: large enough to be kept.
        let (a, b) = (matrix(128, 40, 0.7), matrix(40, 160, 0.8));
        crate::workspace::clear();
        crate::workspace::give(Array2::<f64>::from_elem((160, 128), f64::NAN));
        let kept = crate::workspace::held_bytes();
        assert_eq!(kept, 128 * 160 * 8);
        let got = matmul(a.view(), b.view());
        assert_eq!(crate::workspace::held_bytes(), 0, "the buffer was not used");
        assert!(got.is_standard_layout());
        let worst = (&got - &naive(a.view(), b.view()))
            .iter()
            .fold(0.0_f64, |w, d| w.max(d.abs()));
        assert!(worst < 1e-12, "{worst:e}");
        #[cfg(not(feature = "faer"))]
        {
            // The same kernel as `dot`, bit for bit.
            assert_eq!(got, a.dot(&b));
            // Two column-major operands: `dot`'s column-major result, not the kept buffer.
            let (at, bt) = (matrix(40, 128, 0.9), matrix(160, 40, 1.0));
            crate::workspace::give(Array2::<f64>::from_elem((128, 160), f64::NAN));
            let got = matmul(at.t(), bt.t());
            assert_eq!(crate::workspace::held_bytes(), kept);
            assert_eq!(got, at.t().dot(&bt.t()));
        }
        crate::workspace::clear();
    }
}
