//! Helpers for fused elementwise groups.
//!
//! `_grad` compiles a run of elementwise ops on arrays (`tanh(&(&y * a + b)) * x`) into one
//! loop over the elements, forward and backward, calling [`ops::elem`](crate::ops::elem) on
//! plain floats: no array per intermediate node, one buffer for the values the backward loop
//! reads. It does so when the group's array inputs all have one shape and are contiguous, and
//! runs the whole gradient op by op otherwise (broadcasting, strided views), with the kernels
//! that also report any error.

use crate::broadcast::Broadcast;
use crate::error::{Result, TapeError};
use crate::float::Float;
use crate::tensor::{Tensor, Value};
use ndarray::{Array, Dimension};
use std::borrow::Cow;
use std::marker::PhantomData;

/// The elements of `x` as a slice, if it is contiguous in standard order.
#[inline]
pub fn slice<T: Tensor + ?Sized>(x: &T) -> Option<&[T::Elem]> {
    x.as_view().to_slice()
}

/// [`slice()`] for the backward loop, where the forward loop has already found it contiguous
/// (empty otherwise, which reads as zeros: never a panic).
#[inline]
pub fn slice_or_empty<T: Tensor + ?Sized>(x: &T) -> &[T::Elem] {
    slice(x).unwrap_or(&[])
}

/// The shape a group runs over and its number of elements: the largest input's (of the
/// highest rank among equally large ones: `[1, n]` rather than `[n]`), provided every other
/// input's shape, less leading 1s, ends it (a bias row `[n]` against `[m, n]`: element `i` of
/// the group reads element `i mod n` of the row). `None` for any other broadcasting, and where
/// broadcasting would add axes to the largest shape (`[2, 4]` against `[1, 1, 4]`), which the
/// op-by-op kernels handle.
#[inline]
pub fn layout<'a>(shapes: &[&'a [usize]]) -> Option<(&'a [usize], usize)> {
    let full = *shapes
        .iter()
        .max_by_key(|s| (s.iter().product::<usize>(), s.len()))?;
    if shapes.iter().any(|s| s.len() > full.len()) {
        return None;
    }
    let fits = |s: &[usize]| {
        let start = s.iter().position(|&d| d != 1).unwrap_or(s.len());
        let core = &s[start..];
        core.len() <= full.len() && full.ends_with(core)
    };
    if shapes.iter().all(|s| fits(s)) {
        Some((full, full.iter().product()))
    } else {
        None
    }
}

/// The type of a node's value, known at compile time and nothing at run time: fused code
/// derives each node's type from its operands' the way the op's kernel would, so that a group
/// output has exactly the type the op-by-op code gives it.
pub struct Ty<T>(PhantomData<fn() -> T>);

/// The type of `x`.
#[inline(always)]
pub fn ty_of<T>(_x: &T) -> Ty<T> {
    Ty(PhantomData)
}

/// The type of a binary elementwise op's value (`a + b`): the operands' broadcast type.
#[inline(always)]
pub fn ty_binary<A: Broadcast<B>, B: Tensor<Elem = A::Elem>>(_a: &Ty<A>, _b: &Ty<B>) -> Ty<A::Out> {
    Ty(PhantomData)
}

/// The type of a unary elementwise op's value (`tanh(x)`): the operand's owned type.
#[inline(always)]
pub fn ty_unary<T: Tensor>(_x: &Ty<T>) -> Ty<T::Owned> {
    Ty(PhantomData)
}

/// A group output: `data` (in standard order) as a value of type `V` and shape `shape`.
///
/// # Errors
/// [`TapeError::Rank`] if `shape` does not have `V`'s number of dimensions (generated code
/// passes the shape of an input of the same rank, so this does not happen).
pub fn output_as<V: Value>(data: Vec<V::Elem>, shape: &[usize], _ty: &Ty<V>) -> Result<V> {
    output(data, shape)
}

/// `data` (in standard order) as a value of shape `shape`.
///
/// # Errors
/// As [`output_as`].
pub fn output<V: Value>(data: Vec<V::Elem>, shape: &[usize]) -> Result<V> {
    let rank = || TapeError::rank("fuse", "has its value's number of dimensions", shape);
    if <V::Dim as Dimension>::NDIM.is_some_and(|n| n != shape.len()) {
        return Err(rank());
    }
    let mut dim = V::Dim::zeros(shape.len());
    dim.slice_mut().copy_from_slice(shape);
    Array::from_shape_vec(dim, data)
        .map(V::from_array)
        .map_err(|_| TapeError::rank("fuse", "has as many elements as its shape", shape))
}

/// The cotangent a group output received, as `len` contiguous elements (copied only if it is
/// strided); `None` if nothing reached it.
///
/// # Errors
/// [`TapeError::ContributionShape`] if it does not have `len` elements.
pub fn cotangent<V: Value>(slot: &Option<V>, len: usize) -> Result<Option<Cow<'_, [V::Elem]>>> {
    let Some(g) = slot else {
        return Ok(None);
    };
    let view = g.as_view();
    if view.len() != len {
        return Err(TapeError::ContributionShape {
            op: "fuse",
            expected: vec![len],
            got: view.shape().to_vec(),
            node: None,
        });
    }
    Ok(Some(match view.to_slice() {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(view.iter().copied().collect()),
    }))
}

/// How many elements a value has (1 for a scalar).
pub fn elements<T: Tensor>(x: &T) -> usize {
    x.shape_of().iter().product()
}

/// A value's elements in standard order, in its own buffer where it has one (a group input
/// nothing reads after the loop, whose buffer then takes the group's first output).
pub fn into_buffer<V: Value>(v: V) -> Vec<V::Elem> {
    let array = v.into_array();
    let len = array.len();
    if array.is_standard_layout() {
        match array.into_raw_vec_and_offset() {
            (mut data, Some(0) | None) => {
                data.truncate(len);
                data
            }
            (data, Some(offset)) => data[offset..offset + len].to_vec(),
        }
    } else {
        array.iter().copied().collect()
    }
}

/// Stores a strip of the group's first output: over the recycled input's elements where
/// `in_place` (the loop has already read them), otherwise appended to `out`.
#[inline(always)]
pub fn store_either<F: Float>(
    buffer: &mut [F],
    out: &mut Vec<F>,
    in_place: bool,
    strip: &Strip<F>,
    base: usize,
    len: usize,
) {
    if in_place {
        let end = len.min(base + LANES);
        if base < end {
            buffer[base..end].copy_from_slice(&strip[..end - base]);
        }
    } else {
        store(out, strip, base, len);
    }
}

/// Zeros for a group input's gradient, accumulated element by element in the backward loop.
pub fn zeros<F: Float>(len: usize) -> Vec<F> {
    vec![F::zero(); len]
}

/// The buffer for a group input's gradient (`input_len` elements, the group has `len`): the
/// cotangent a group output received, taken from its `slot`, when both cover the whole group
/// and the cotangent is a contiguous array of its own (then `true`: the backward loop reads
/// each strip of the cotangent with [`load_or_take`] before it adds to it); zeros otherwise.
pub fn reuse<V: Value>(slot: &mut Option<V>, input_len: usize, len: usize) -> (Vec<V::Elem>, bool) {
    let fits = |g: &V| g.as_view().len() == len;
    if input_len == len && slot.as_ref().is_some_and(fits) {
        if let Some(g) = slot.take() {
            return (into_buffer(g), true);
        }
    }
    (zeros(input_len), false)
}

/// A strip of a group output's cotangent: from `buffer` where [`reuse`] took it there (the
/// strip is zeroed after reading, for the input's gradient), otherwise from `g`.
#[inline(always)]
pub fn load_or_take<F: Float>(
    g: &Option<Cow<'_, [F]>>,
    buffer: &mut [F],
    taken: bool,
    base: usize,
    len: usize,
) -> Strip<F> {
    if !taken {
        return load_cotangent(g, base);
    }
    let strip = load(buffer, base, len);
    let end = len.min(base + LANES);
    if base < end {
        buffer[base..end].fill(F::zero());
    }
    strip
}

/// How many elements a fused loop computes side by side: each node of the group runs over a
/// strip of this many elements before the next node does, so that independent elements
/// overlap in the CPU (a chain of `tanh`s on one element would wait on each result) while the
/// strip's values stay in registers and L1.
pub const LANES: usize = 8;

/// A strip of `LANES` elements.
pub type Strip<F> = [F; LANES];

/// Elements `base..base + LANES` of a group of `len` elements, read from input `x`: directly
/// when `x` has all `len`, cyclically when it is broadcast (a bias row); zeros past `len`.
#[inline(always)]
pub fn load<F: Float>(x: &[F], base: usize, len: usize) -> Strip<F> {
    if x.len() == len {
        if let Some(strip) = x.get(base..base + LANES) {
            return std::array::from_fn(|l| strip[l]);
        }
    }
    load_rest(x, base, len)
}

/// [`load`] of the last, partial strip or of a broadcast input, out of line: the loop body,
/// with one `load` per input, stays a fixed-size copy each, and small enough for the
/// instruction cache.
#[inline(never)]
fn load_rest<F: Float>(x: &[F], base: usize, len: usize) -> Strip<F> {
    let mut strip = [F::zero(); LANES];
    let period = x.len();
    if period > 0 {
        let mut i = base % period;
        // A whole strip within one period of a broadcast row (a bias of 128 values): a copy.
        if base + LANES <= len {
            if let Some(run) = x.get(i..i + LANES) {
                strip.copy_from_slice(run);
                return strip;
            }
        }
        for v in strip.iter_mut().take(len.saturating_sub(base)) {
            *v = x[i];
            i = if i + 1 == period { 0 } else { i + 1 };
        }
    }
    strip
}

/// A strip of the cotangent `g` (zeros where nothing reached the output).
#[inline(always)]
pub fn load_cotangent<F: Float>(g: &Option<Cow<'_, [F]>>, base: usize) -> Strip<F> {
    match g {
        Some(g) => load(g, base, g.len()),
        None => [F::zero(); LANES],
    }
}

/// Appends the strip's elements that lie before `len` to `out`.
#[inline(always)]
pub fn store<F: Float>(out: &mut Vec<F>, strip: &Strip<F>, base: usize, len: usize) {
    let n = len.saturating_sub(base).min(LANES);
    out.extend_from_slice(&strip[..n]);
}

/// Adds the strip's elements that lie before `len` to an input's gradient `total`, at the
/// elements [`load`] read them from (summing over the broadcast rows of a bias).
#[inline(always)]
pub fn add_to<F: Float>(total: &mut [F], strip: &Strip<F>, base: usize, len: usize) {
    if total.len() == len {
        if let Some(total) = total.get_mut(base..base + LANES) {
            for (t, s) in total.iter_mut().zip(strip) {
                *t += *s;
            }
            return;
        }
    }
    add_to_rest(total, strip, base, len);
}

/// [`add_to`] of the last, partial strip or of a broadcast input's gradient, out of line as
/// [`load_rest`].
#[inline(never)]
fn add_to_rest<F: Float>(total: &mut [F], strip: &Strip<F>, base: usize, len: usize) {
    let period = total.len();
    if period > 0 {
        let mut i = base % period;
        if base + LANES <= len {
            if let Some(run) = total.get_mut(i..i + LANES) {
                for (t, s) in run.iter_mut().zip(strip) {
                    *t += *s;
                }
                return;
            }
        }
        for s in strip.iter().take(len.saturating_sub(base)) {
            total[i] += *s;
            i = if i + 1 == period { 0 } else { i + 1 };
        }
    }
}

/// The strip of saved values `k` of strip `s` (`n` values saved per strip). The forward loop
/// saves whole strips, so this is a copy of `LANES` elements, the same at every node.
#[inline(always)]
pub fn saved<F: Float>(buffer: &[F], s: usize, n: usize, k: usize) -> Strip<F> {
    let base = (s * n + k) * LANES;
    match buffer.get(base..base + LANES) {
        Some(strip) => std::array::from_fn(|l| strip[l]),
        None => [F::zero(); LANES],
    }
}

/// The sum of the strip's elements that lie before `len`: a scalar input's share.
#[inline(always)]
pub fn sum_valid<F: Float>(strip: &Strip<F>, base: usize, len: usize) -> F {
    let n = len.saturating_sub(base).min(LANES);
    strip[..n].iter().fold(F::zero(), |acc, &v| acc + v)
}

/// A vector's first `N` elements as an array, where it is 1-d, contiguous and at least that
/// long: `_grad` reads `x[i]` from it when the macro knew every index `i` (an unrolled loop's),
/// so each read is a load with no bounds check. `None` sends `_grad` to its op-by-op path,
/// which reports a short vector at the read that fails.
///
/// ```
/// use ndarray::array;
/// use tape_runtime::fuse::fixed;
///
/// let x = array![1.0_f64, 2.0, 3.0];
/// assert_eq!(fixed::<f64, _, _, 2>(&x), Some(&[1.0, 2.0]));
/// assert_eq!(fixed::<f64, _, _, 4>(&x), None);
/// ```
#[inline]
pub fn fixed<F: Float, S: ndarray::Data<Elem = F>, D: Dimension, const N: usize>(
    x: &ndarray::ArrayBase<S, D>,
) -> Option<&[F; N]> {
    if x.ndim() != 1 {
        return None;
    }
    x.as_slice()?.get(..N)?.try_into().ok()
}

/// The gradient elements of a vector of `len` read through [`fixed`]: the reads' `total`
/// first, zeros after.
pub fn from_fixed<F: Float, const N: usize>(total: &[F; N], len: usize) -> Vec<F> {
    let mut out = Vec::with_capacity(len.max(N));
    out.extend_from_slice(total);
    out.resize(len.max(N), F::zero());
    out
}

/// Runs `body` as a function of its own: a long function's fused loops are outlined so
/// that LLVM optimizes each loop on its own rather than one very long function.
#[inline(never)]
pub fn outlined<R>(body: impl FnOnce() -> R) -> R {
    body()
}

/// Runs one block of a long `_grad` body as a function of its own (as [`outlined`]), and
/// returns the values it leaves for the code after it.
///
/// The block puts those values in `live` as its last statement and returns `Ok(())`, so its
/// return type is known from its first line. rustc then settles each early error return in
/// the block as it meets it; a block returning its values itself would leave every such
/// return pending on the type of the last line, and type-checking a block would cost the
/// square of its length.
///
/// ```
/// # use tape_runtime::fuse::block;
/// let sum = block(|live| {
///     *live = Some(1.0 + 2.0);
///     Ok(())
/// });
/// assert_eq!(sum.unwrap(), 3.0);
/// ```
///
/// # Errors
/// The block's error.
#[inline]
pub fn block<T>(body: impl FnOnce(&mut Option<T>) -> Result<()>) -> Result<T> {
    match block_or_unfused(body)? {
        Some(values) => Ok(values),
        None => unreachable!("a block without a fallback sets its values before it returns `Ok`"),
    }
}

/// [`block`] for a block that may leave for the op-by-op path (a fused group in it whose
/// inputs the fused loop cannot take): it then returns `Ok(())` with `live` unset, and this
/// returns `None`.
///
/// ```
/// # use tape_runtime::fuse::block_or_unfused;
/// let fused = true;
/// let out = block_or_unfused(|live| {
///     if !fused {
///         return Ok(());
///     }
///     *live = Some(2.0);
///     Ok(())
/// });
/// assert_eq!(out.unwrap(), Some(2.0));
/// ```
///
/// # Errors
/// The block's error.
#[inline(never)]
pub fn block_or_unfused<T>(body: impl FnOnce(&mut Option<T>) -> Result<()>) -> Result<Option<T>> {
    let mut live = None;
    body(&mut live)?;
    Ok(live)
}

/// How many strips cover `len` elements.
#[inline(always)]
pub fn strips(len: usize) -> usize {
    len.div_ceil(LANES)
}

/// A scalar on every lane.
#[inline(always)]
pub fn splat<F: Float>(v: F) -> Strip<F> {
    [v; LANES]
}

/// `f(x)` on every lane, for a unary op with a constant argument `c` (`powi`'s exponent).
#[inline(always)]
pub fn map1_with<F: Float, C: Copy>(x: &Strip<F>, c: C, f: impl Fn(F, C) -> F) -> Strip<F> {
    let mut out = [F::zero(); LANES];
    for l in 0..LANES {
        out[l] = f(x[l], c);
    }
    out
}

/// `f(x)` on every lane.
#[inline(always)]
pub fn map1<F: Float>(x: &Strip<F>, f: impl Fn(F) -> F) -> Strip<F> {
    map1_with(x, (), |x, ()| f(x))
}

/// `f(a, b)` on every lane.
#[inline(always)]
pub fn map2<F: Float>(a: &Strip<F>, b: &Strip<F>, f: impl Fn(F, F) -> F) -> Strip<F> {
    let mut out = [F::zero(); LANES];
    for l in 0..LANES {
        out[l] = f(a[l], b[l]);
    }
    out
}

/// A unary op's VJP `f(ḡ, x, y, c)` on every lane, with a constant argument `c`.
#[inline(always)]
pub fn vjp1_with<F: Float, C: Copy>(
    g: &Strip<F>,
    x: &Strip<F>,
    y: &Strip<F>,
    c: C,
    f: impl Fn(F, F, F, C) -> F,
) -> Strip<F> {
    let mut out = [F::zero(); LANES];
    for l in 0..LANES {
        out[l] = f(g[l], x[l], y[l], c);
    }
    out
}

/// A unary op's VJP `f(ḡ, x, y)` on every lane.
#[inline(always)]
pub fn vjp1<F: Float>(
    g: &Strip<F>,
    x: &Strip<F>,
    y: &Strip<F>,
    f: impl Fn(F, F, F) -> F,
) -> Strip<F> {
    vjp1_with(g, x, y, (), |g, x, y, ()| f(g, x, y))
}

/// [`map1`] out of line: one copy per kernel, shared by every node of a fused loop that
/// applies it (long kernels such as `tanh`, which inlined at each of many nodes would make
/// the loop body too large for the instruction cache).
#[inline(never)]
pub fn map1_shared<F: Float>(x: &Strip<F>, f: impl Fn(F) -> F) -> Strip<F> {
    map1(x, f)
}

/// `tanh` on every lane, out of line as [`map1_shared`], by [`math::tanh_strip`]: the same
/// values as `map1_shared(x, elem::tanh)`, with one branch per strip instead of one per lane.
///
/// [`math::tanh_strip`]: crate::math::tanh_strip
#[inline(never)]
pub fn tanh_shared<F: Float>(x: &Strip<F>) -> Strip<F> {
    F::tanh_strip(x)
}

/// [`map1_with`] out of line, as [`map1_shared`].
#[inline(never)]
pub fn map1_with_shared<F: Float, C: Copy>(x: &Strip<F>, c: C, f: impl Fn(F, C) -> F) -> Strip<F> {
    map1_with(x, c, f)
}

/// [`vjp1`] out of line, as [`map1_shared`] (VJPs as long as a kernel: `sin`'s computes `cos`).
#[inline(never)]
pub fn vjp1_shared<F: Float>(
    g: &Strip<F>,
    x: &Strip<F>,
    y: &Strip<F>,
    f: impl Fn(F, F, F) -> F,
) -> Strip<F> {
    vjp1(g, x, y, f)
}

/// [`vjp1_with`] out of line, as [`map1_shared`].
#[inline(never)]
pub fn vjp1_with_shared<F: Float, C: Copy>(
    g: &Strip<F>,
    x: &Strip<F>,
    y: &Strip<F>,
    c: C,
    f: impl Fn(F, F, F, C) -> F,
) -> Strip<F> {
    vjp1_with(g, x, y, c, f)
}

/// A binary op's VJP `f(ḡ, a, b) = (ā, b̄)` on every lane.
#[inline(always)]
pub fn vjp2<F: Float>(
    g: &Strip<F>,
    a: &Strip<F>,
    b: &Strip<F>,
    f: impl Fn(F, F, F) -> (F, F),
) -> (Strip<F>, Strip<F>) {
    let (mut da, mut db) = ([F::zero(); LANES], [F::zero(); LANES]);
    for l in 0..LANES {
        (da[l], db[l]) = f(g[l], a[l], b[l]);
    }
    (da, db)
}

/// [`vjp2`] whose part for operand `into` (0 or 1) is added straight into an input's gradient
/// (as [`add_to`]), returning the other operand's part: one call where a chain of products
/// would make two, each a cost to type-check.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn vjp2_into<F: Float>(
    g: &Strip<F>,
    a: &Strip<F>,
    b: &Strip<F>,
    f: impl Fn(F, F, F) -> (F, F),
    into: usize,
    total: &mut [F],
    base: usize,
    len: usize,
) -> Strip<F> {
    let (da, db) = vjp2(g, a, b, f);
    let (added, other) = if into == 0 { (da, db) } else { (db, da) };
    add_to(total, &added, base, len);
    other
}

#[cfg(test)]
mod tests {
    use super::{LANES, add_to, layout, load};

    #[test]
    fn strips_read_and_add_whole_partial_and_broadcast() {
        let x: Vec<f64> = (0..11).map(f64::from).collect();
        // A whole strip, then the last 3 elements with zeros past the end.
        assert_eq!(load(&x, 0, 11).to_vec(), x[..LANES].to_vec());
        assert_eq!(load(&x, LANES, 11)[..4], [8.0, 9.0, 10.0, 0.0]);
        // A bias row of 3 over 4 rows: the second strip starts at element 8, column 2.
        let row = [10.0, 20.0, 30.0];
        assert_eq!(load(&row, LANES, 12)[..5], [30.0, 10.0, 20.0, 30.0, 0.0]);
        let mut total = [0.0; 3];
        add_to(&mut total, &[1.0; LANES], 0, 12);
        add_to(&mut total, &[1.0; LANES], LANES, 12);
        assert_eq!(total, [4.0; 3]);
        let mut whole = vec![1.0; 11];
        add_to(&mut whole, &[2.0; LANES], 0, 11);
        add_to(&mut whole, &[2.0; LANES], LANES, 11);
        assert_eq!(whole, vec![3.0; 11]);
        // A bias row of 12 (LANES·1.5) over 3 rows: strips within one period are copied
        // whole; the one across the row's end wraps element by element; the last is partial.
        let row: Vec<f64> = (0..12).map(f64::from).collect();
        let read: Vec<f64> = (0..36)
            .step_by(LANES)
            .flat_map(|base| load(&row, base, 36)[..(36 - base).min(LANES)].to_vec())
            .collect();
        assert_eq!(read, [row.clone(), row.clone(), row.clone()].concat());
        let mut total = vec![0.0; 12];
        for base in (0..36).step_by(LANES) {
            let strip: [f64; LANES] = std::array::from_fn(|l| (base + l) as f64);
            add_to(&mut total, &strip, base, 36);
        }
        let want: Vec<f64> = (0..12).map(|j| (3 * j + 36) as f64).collect();
        assert_eq!(total, want);
    }

    #[test]
    fn the_group_runs_over_the_largest_shape_of_the_highest_rank() {
        assert_eq!(layout(&[&[4, 3], &[3]]), Some((&[4, 3][..], 12)));
        // As many elements: the matrix's shape, not the row's.
        assert_eq!(layout(&[&[1, 3], &[3]]), Some((&[1, 3][..], 3)));
        assert_eq!(layout(&[&[3], &[1, 3]]), Some((&[1, 3][..], 3)));
        assert_eq!(layout(&[&[1], &[1, 1]]), Some((&[1, 1][..], 1)));
        // Leading 1s of a smaller input are fine; axes broadcasting would add are not.
        assert_eq!(layout(&[&[2, 4], &[1, 4]]), Some((&[2, 4][..], 8)));
        assert_eq!(layout(&[&[2, 4], &[1, 1, 4]]), None);
        // A column broadcast along the last axis is not a bias row.
        assert_eq!(layout(&[&[4, 3], &[4, 1]]), None);
    }
}
