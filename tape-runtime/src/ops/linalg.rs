//! Linear algebra: `dot` (matrix·matrix, matrix·vector, vector·matrix, vector·vector, as
//! ndarray's `Dot`) and `transpose` (`t()`).

use crate::accumulate::Acc;
use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::gemm::matmul;
use crate::tensor::{Tensor, Value, check_same_shape, into_dim, view_into_dim};
use crate::workspace;
use ndarray::{
    Array, Array1, Array2, ArrayBase, ArrayD, ArrayView1, ArrayView2, ArrayViewD, Data, Dimension,
    Ix1, Ix2, IxDyn, Zip,
};

fn check_inner(lhs: &[usize], rhs: &[usize], inner_l: usize, inner_r: usize) -> Result<()> {
    if inner_l == inner_r {
        Ok(())
    } else {
        Err(TapeError::shape("dot", "inner dimensions differ", lhs, rhs))
    }
}

/// `x ⊗ y`: the matrix `xᵢ·yⱼ`.
fn outer<F: Float>(x: ArrayView1<'_, F>, y: ArrayView1<'_, F>) -> Array2<F> {
    let mut out = Array2::zeros((x.len(), y.len()));
    Zip::from(out.rows_mut()).and(&x).for_each(|mut row, &xi| {
        Zip::from(&mut row).and(&y).for_each(|o, &yj| *o = xi * yj);
    });
    out
}

/// Contributions `(ā, b̄)` of one `dot`, each computed only if wanted.
type Grads<A, B> = (Option<A>, Option<B>);

// C = A·B, A: [m, k], B: [k, n]: Ā = Ḡ·Bᵀ, B̄ = Aᵀ·Ḡ.
fn mm<F: Float>(a: ArrayView2<'_, F>, b: ArrayView2<'_, F>) -> Result<Array2<F>> {
    check_inner(a.shape(), b.shape(), a.ncols(), b.nrows())?;
    Ok(matmul(a, b))
}

fn mm_grads<F: Float>(
    g: Array2<F>,
    a: ArrayView2<'_, F>,
    b: ArrayView2<'_, F>,
    want: (bool, bool),
) -> Result<Grads<Array2<F>, Array2<F>>> {
    check_same_shape(
        "dot",
        "cotangent and output differ",
        g.shape(),
        &[a.nrows(), b.ncols()],
    )?;
    let grads = (
        want.0.then(|| matmul(g.view(), b.t())),
        want.1.then(|| matmul(a.t(), g.view())),
    );
    // The cotangent's last use: its buffer serves the next product of its size.
    workspace::give(g);
    Ok(grads)
}

// y = A·x, A: [m, k], x: [k]: Ā = ḡ ⊗ x, x̄ = Aᵀ·ḡ.
fn mv<F: Float>(a: ArrayView2<'_, F>, x: ArrayView1<'_, F>) -> Result<Array1<F>> {
    check_inner(a.shape(), x.shape(), a.ncols(), x.len())?;
    Ok(a.dot(&x))
}

fn mv_grads<F: Float>(
    g: Array1<F>,
    a: ArrayView2<'_, F>,
    x: ArrayView1<'_, F>,
    want: (bool, bool),
) -> Result<Grads<Array2<F>, Array1<F>>> {
    check_same_shape(
        "dot",
        "cotangent and output differ",
        g.shape(),
        &[a.nrows()],
    )?;
    Ok((
        want.0.then(|| outer(g.view(), x)),
        want.1.then(|| a.t().dot(&g)),
    ))
}

// y = xᵀ·B, x: [k], B: [k, n]: x̄ = B·ḡ, B̄ = x ⊗ ḡ.
fn vm<F: Float>(x: ArrayView1<'_, F>, b: ArrayView2<'_, F>) -> Result<Array1<F>> {
    check_inner(x.shape(), b.shape(), x.len(), b.nrows())?;
    Ok(x.dot(&b))
}

fn vm_grads<F: Float>(
    g: Array1<F>,
    x: ArrayView1<'_, F>,
    b: ArrayView2<'_, F>,
    want: (bool, bool),
) -> Result<Grads<Array1<F>, Array2<F>>> {
    check_same_shape(
        "dot",
        "cotangent and output differ",
        g.shape(),
        &[b.ncols()],
    )?;
    Ok((
        want.0.then(|| b.dot(&g)),
        want.1.then(|| outer(x, g.view())),
    ))
}

// s = a·b, a, b: [k]: ā = s̄·b, b̄ = s̄·a.
fn vv<F: Float>(a: ArrayView1<'_, F>, b: ArrayView1<'_, F>) -> Result<F> {
    check_inner(a.shape(), b.shape(), a.len(), b.len())?;
    Ok(a.dot(&b))
}

fn vv_grads<F: Float>(
    g: F,
    a: ArrayView1<'_, F>,
    b: ArrayView1<'_, F>,
    want: (bool, bool),
) -> Grads<Array1<F>, Array1<F>> {
    (
        want.0.then(|| b.mapv(|v| v * g)),
        want.1.then(|| a.mapv(|v| v * g)),
    )
}

/// Operands of `dot`, with ndarray's result types: matrix·matrix → matrix, matrix·vector and
/// vector·matrix → vector, vector·vector → scalar; dynamic-dimension arrays dispatch on their
/// ranks at run time.
pub trait Dot<B: Tensor<Elem = Self::Elem>>: Tensor {
    /// The product's type.
    type Out: Value<Elem = Self::Elem>;

    /// The product.
    ///
    /// # Errors
    /// [`TapeError::Shape`] when the inner dimensions differ; [`TapeError::Rank`] for a
    /// dynamic-dimension operand that is not 1-d or 2-d.
    fn dot_checked(&self, b: &B) -> Result<Self::Out>;

    /// Sends the product's VJP to the operands' slots.
    ///
    /// # Errors
    /// When `g` does not have the product's shape.
    fn dot_grads(
        g: Self::Out,
        a: &Self,
        b: &B,
        da: Acc<'_, Self::Owned>,
        db: Acc<'_, B::Owned>,
    ) -> Result<()>;
}

fn put2<A: Value, B: Value>(grads: Grads<A, B>, da: Acc<'_, A>, db: Acc<'_, B>) -> Result<()> {
    if let Some(ga) = grads.0 {
        da.put(ga)?;
    }
    if let Some(gb) = grads.1 {
        db.put(gb)?;
    }
    Ok(())
}

macro_rules! impl_dot {
    ($da:ty, $db:ty, $out:ty, $fwd:ident, $grads:ident $(, $ok:ident)?) => {
        impl<F: Float, SA: Data<Elem = F>, SB: Data<Elem = F>> Dot<ArrayBase<SB, $db>>
            for ArrayBase<SA, $da>
        {
            type Out = $out;

            fn dot_checked(&self, b: &ArrayBase<SB, $db>) -> Result<$out> {
                $fwd(self.view(), b.view())
            }

            fn dot_grads(
                g: $out,
                a: &Self,
                b: &ArrayBase<SB, $db>,
                da: Acc<'_, Array<F, $da>>,
                db: Acc<'_, Array<F, $db>>,
            ) -> Result<()> {
                let want = (da.wanted(), db.wanted());
                let grads = $($ok)?($grads(g, a.view(), b.view(), want))?;
                put2(grads, da, db)
            }
        }
    };
}

impl_dot!(Ix2, Ix2, Array2<F>, mm, mm_grads);
impl_dot!(Ix2, Ix1, Array1<F>, mv, mv_grads);
impl_dot!(Ix1, Ix2, Array1<F>, vm, vm_grads);
impl_dot!(Ix1, Ix1, F, vv, vv_grads, Ok);

fn as_1d<F: Float>(a: ArrayViewD<'_, F>) -> Result<ArrayView1<'_, F>> {
    view_into_dim::<F, IxDyn, Ix1>("dot", a)
}

fn as_2d<F: Float>(a: ArrayViewD<'_, F>) -> Result<ArrayView2<'_, F>> {
    view_into_dim::<F, IxDyn, Ix2>("dot", a)
}

fn dyn_grads<F: Float, A: Dimension, B: Dimension>(
    grads: Grads<Array<F, A>, Array<F, B>>,
) -> Grads<ArrayD<F>, ArrayD<F>> {
    (grads.0.map(Array::into_dyn), grads.1.map(Array::into_dyn))
}

impl<F: Float, SA: Data<Elem = F>, SB: Data<Elem = F>> Dot<ArrayBase<SB, IxDyn>>
    for ArrayBase<SA, IxDyn>
{
    type Out = ArrayD<F>;

    fn dot_checked(&self, b: &ArrayBase<SB, IxDyn>) -> Result<ArrayD<F>> {
        let (a, b) = (self.view(), b.view());
        match (a.ndim(), b.ndim()) {
            (2, 2) => Ok(mm(as_2d(a.clone())?, as_2d(b.clone())?)?.into_dyn()),
            (2, 1) => Ok(mv(as_2d(a.clone())?, as_1d(b.clone())?)?.into_dyn()),
            (1, 2) => Ok(vm(as_1d(a.clone())?, as_2d(b.clone())?)?.into_dyn()),
            (1, 1) => Ok(ndarray::arr0(vv(as_1d(a.clone())?, as_1d(b.clone())?)?).into_dyn()),
            (1 | 2, _) => Err(TapeError::rank(
                "dot",
                "expects 1-d or 2-d operands",
                b.shape(),
            )),
            _ => Err(TapeError::rank(
                "dot",
                "expects 1-d or 2-d operands",
                a.shape(),
            )),
        }
    }

    fn dot_grads(
        g: ArrayD<F>,
        a: &Self,
        b: &ArrayBase<SB, IxDyn>,
        da: Acc<'_, ArrayD<F>>,
        db: Acc<'_, ArrayD<F>>,
    ) -> Result<()> {
        let want = (da.wanted(), db.wanted());
        let (a, b) = (a.view(), b.view());
        let grads = match (a.ndim(), b.ndim()) {
            (2, 2) => dyn_grads(mm_grads(
                into_dim("dot", g)?,
                as_2d(a.clone())?,
                as_2d(b.clone())?,
                want,
            )?),
            (2, 1) => dyn_grads(mv_grads(
                into_dim("dot", g)?,
                as_2d(a.clone())?,
                as_1d(b.clone())?,
                want,
            )?),
            (1, 2) => dyn_grads(vm_grads(
                into_dim("dot", g)?,
                as_1d(a.clone())?,
                as_2d(b.clone())?,
                want,
            )?),
            (1, 1) => {
                let s = into_dim::<F, IxDyn, ndarray::Ix0>("dot", g)?.into_scalar();
                dyn_grads(vv_grads(s, as_1d(a.clone())?, as_1d(b.clone())?, want))
            }
            _ => {
                return Err(TapeError::rank(
                    "dot",
                    "expects 1-d or 2-d operands",
                    a.shape(),
                ));
            }
        };
        put2(grads, da, db)
    }
}

/// `y = a·b`, matrix product or inner product by the operands' ranks, as ndarray's `dot`.
/// PyTorch `a @ b`, JAX `jnp.dot`.
///
/// ```
/// # use tape_runtime::ops::linalg::dot;
/// # use ndarray::array;
/// assert_eq!(dot(&array![[1.0, 2.0]], &array![3.0, 4.0]).unwrap(), array![11.0]);
/// ```
///
/// # Errors
/// [`TapeError::Shape`] when the inner dimensions differ.
pub fn dot<A: Dot<B>, B: Tensor<Elem = A::Elem>>(a: &A, b: &B) -> Result<A::Out> {
    a.dot_checked(b)
}

/// VJP of [`dot`]: for `C = A·B`, `Ā = Ḡ·Bᵀ` and `B̄ = Aᵀ·Ḡ`; a vector operand takes the
/// matching outer or matrix-vector product.
///
/// # Errors
/// When `g` does not have the product's shape.
pub fn dot_vjp<A: Dot<B>, B: Tensor<Elem = A::Elem>>(
    g: A::Out,
    a: &A,
    b: &B,
    _y: &impl Tensor,
    da: Acc<'_, A::Owned>,
    db: Acc<'_, B::Owned>,
) -> Result<()> {
    A::dot_grads(g, a, b, da, db)
}

/// `y = xᵀ`: the axes reversed (a matrix transposed; a vector unchanged), as ndarray's `t()`.
/// PyTorch `x.T`, JAX `x.T`.
///
/// ```
/// # use tape_runtime::ops::linalg::transpose;
/// # use ndarray::array;
/// assert_eq!(transpose(&array![[1.0, 2.0]]).unwrap(), array![[1.0], [2.0]]);
/// ```
///
/// # Errors
/// Never.
pub fn transpose<F: Float, S: Data<Elem = F>, D: Dimension>(
    x: &ArrayBase<S, D>,
) -> Result<Array<F, D>> {
    Ok(x.t().to_owned())
}

/// VJP of [`transpose`]: `x̄ = ḡᵀ` (a stride change, no copy).
///
/// # Errors
/// When `gᵀ` does not have `x`'s shape.
pub fn transpose_vjp<F: Float, S: Data<Elem = F>, D: Dimension>(
    g: Array<F, D>,
    x: &ArrayBase<S, D>,
    _y: &impl Tensor,
    dx: Acc<'_, Array<F, D>>,
) -> Result<()> {
    dx.put_with(|| {
        let gt = g.reversed_axes();
        check_same_shape(
            "transpose",
            "cotangent and input differ",
            gt.shape(),
            x.shape(),
        )?;
        Ok(gt)
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{check_fd1, check_fd2, det, vjp2};
    use super::*;
    use ndarray::array;

    #[test]
    fn matmul_vjp_analytic() {
        // C = A·B: Ā = Ḡ·Bᵀ, B̄ = Aᵀ·Ḡ.
        let a = array![[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]];
        let b = array![[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]];
        let g = Array2::from_elem((3, 3), 1.0);
        let (ga, gb) = vjp2(
            dot,
            dot_vjp,
            &a.clone().into_dyn(),
            &b.clone().into_dyn(),
            &g.clone().into_dyn(),
        );
        assert_eq!(ga, g.dot(&b.t()).into_dyn());
        assert_eq!(gb, a.t().dot(&g).into_dyn());
    }

    #[test]
    fn matrix_vector_and_vector_vector() {
        // y = A·x: Ā = ḡ ⊗ x, x̄ = Aᵀ·ḡ.
        let a = array![[1.0_f64, 2.0], [3.0, 4.0]];
        let x = array![1.0_f64, -1.0];
        let y = dot(&a, &x).unwrap();
        assert_eq!(y, array![-1.0, -1.0]);
        let (mut da, mut dx) = (None, None);
        dot_vjp(
            array![1.0, 2.0],
            &a,
            &x,
            &y,
            Acc::to(&mut da),
            Acc::to(&mut dx),
        )
        .unwrap();
        assert_eq!(da, Some(array![[1.0, -1.0], [2.0, -2.0]]));
        assert_eq!(dx, Some(array![7.0, 10.0]));
        // s = a·b: ā = s̄·b.
        let (mut da, mut db) = (None, None);
        dot_vjp(2.0, &x, &x, &2.0, Acc::to(&mut da), Acc::to(&mut db)).unwrap();
        assert_eq!(da, Some(array![2.0, -2.0]));
        // x·B: x̄ = B·ḡ, B̄ = x ⊗ ḡ.
        let y = dot(&x, &a).unwrap();
        assert_eq!(y, array![-2.0, -2.0]);
        let (mut dx, mut da) = (None, None);
        dot_vjp(
            array![1.0, 0.0],
            &x,
            &a,
            &y,
            Acc::to(&mut dx),
            Acc::to(&mut da),
        )
        .unwrap();
        assert_eq!(dx, Some(array![1.0, 3.0]));
        assert_eq!(da, Some(array![[1.0, 0.0], [-1.0, 0.0]]));
    }

    #[test]
    fn dot_vjps_match_fd() {
        for (sa, sb) in [
            (&[3, 4][..], &[4, 2][..]),
            (&[3, 4], &[4]),
            (&[4], &[4, 2]),
            (&[4], &[4]),
        ] {
            let a = det(sa, 1, -1.0, 1.0);
            let b = det(sb, 2, -1.0, 1.0);
            check_fd2(&format!("dot {sa:?}·{sb:?}"), dot, dot_vjp, &a, &b, 1e-8);
        }
    }

    #[test]
    fn transpose_matches_fd() {
        // y = xᵀ: x̄ = ḡᵀ.
        check_fd1(
            "transpose",
            transpose,
            transpose_vjp,
            &det(&[3, 4], 3, -1.0, 1.0),
            1e-8,
        );
    }

    #[test]
    fn mismatched_inner_dimensions_are_an_error() {
        let err = dot(&Array2::<f64>::zeros((2, 3)), &Array2::<f64>::zeros((4, 5))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dot: inner dimensions differ: [2, 3] and [4, 5]"
        );
        let err = dot(
            &ArrayD::<f64>::zeros(IxDyn(&[2, 2, 2])),
            &ArrayD::<f64>::zeros(IxDyn(&[2])),
        )
        .unwrap_err();
        assert!(matches!(err, TapeError::Rank { .. }), "{err}");
    }
}
