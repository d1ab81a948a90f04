//! Buffers of large matrix products, kept per thread from one gradient to the next.
//!
//! The backward pass of [`dot`](crate::ops::linalg::dot) is the last use of the cotangent of
//! a product's output: it gives that buffer here, and the next product of as many elements
//! computes into it instead of asking the allocator for a new one.
//!
//! Why: W4's gradient (`tanh(&x.dot(w)).sum()`: a 1 MiB product, its cotangent computed in
//! place, a 2 MiB gradient) used to free 4 MiB at the top of glibc's heap every call. When
//! that crossed glibc's trim threshold, `free` gave the memory back to the kernel and the next
//! call faulted every page in again: about 1,000 page faults, 2 ms of a 9 ms gradient, in some
//! runs and not in others. A buffer kept here is never given back.
//!
//! Bounded: only buffers of [`MIN_BYTES`] or more (smaller ones are cheap to allocate), at
//! most [`MAX_BUFFERS`] per thread and float type and [`MAX_BYTES`] in all, the oldest let go
//! first. A buffer is reused only for a product of exactly its number of elements, so that no
//! result holds more memory than it needs. [`clear`] frees the calling thread's buffers, and
//! they go when the thread ends.
//!
//! ```
//! use ndarray::Array2;
//! use tape_runtime::workspace;
//!
//! workspace::give(Array2::<f64>::zeros((256, 512)));
//! assert_eq!(workspace::held_bytes(), 256 * 512 * 8);
//! workspace::clear();
//! assert_eq!(workspace::held_bytes(), 0);
//! ```

use crate::float::Float;
use ndarray::{Array, Array2, Dimension};
use std::cell::RefCell;
use std::thread::LocalKey;

/// Buffers smaller than this many bytes are not kept.
pub const MIN_BYTES: usize = 128 * 1024;

/// The most buffers kept per thread and float type.
pub const MAX_BUFFERS: usize = 4;

/// The most bytes kept per thread and float type.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// One thread's buffers of one float type, oldest first.
#[derive(Debug, Default)]
pub struct Buffers<F> {
    kept: Vec<Vec<F>>,
}

impl<F: Float> Buffers<F> {
    /// No buffers.
    pub const fn new() -> Self {
        Buffers { kept: Vec::new() }
    }

    /// A kept buffer of exactly `len` elements (their values are stale).
    fn take(&mut self, len: usize) -> Option<Vec<F>> {
        let i = self.kept.iter().position(|b| b.len() == len)?;
        Some(self.kept.remove(i))
    }

    /// Keeps `buffer`, letting the oldest go to stay within the bounds.
    fn keep(&mut self, buffer: Vec<F>) {
        let size = bytes(&buffer);
        if !(MIN_BYTES..=MAX_BYTES).contains(&size) {
            return;
        }
        while self.kept.len() >= MAX_BUFFERS || self.bytes() + size > MAX_BYTES {
            self.kept.remove(0);
        }
        self.kept.push(buffer);
    }

    /// The bytes kept.
    fn bytes(&self) -> usize {
        self.kept.iter().map(bytes).sum()
    }
}

fn bytes<F>(buffer: &Vec<F>) -> usize {
    buffer.capacity() * size_of::<F>()
}

/// A kept buffer of exactly `len` elements, with stale values, or `None` (then the caller
/// allocates).
pub fn take<F: Float>(len: usize) -> Option<Vec<F>> {
    if len * size_of::<F>() < MIN_BYTES {
        return None;
    }
    F::with_workspace(|w| w.take(len)).flatten()
}

/// [`take`] as an `m × n` matrix in standard layout, with stale values.
pub fn take_matrix<F: Float>(m: usize, n: usize) -> Option<Array2<F>> {
    take(m * n).and_then(|buffer| Array2::from_shape_vec((m, n), buffer).ok())
}

/// Runs `f` on the buffers in `cell`, a thread-local of [`Float::with_workspace`]; `None`
/// while the thread is ending or the buffers are borrowed further up the stack.
pub fn with<F: Float, R>(
    cell: &'static LocalKey<RefCell<Buffers<F>>>,
    f: impl FnOnce(&mut Buffers<F>) -> R,
) -> Option<R> {
    cell.try_with(|b| b.try_borrow_mut().ok().map(|mut b| f(&mut b)))
        .ok()
        .flatten()
}

/// Keeps the buffer of `array`, whose values are no longer needed, for a later [`take`] of as
/// many elements; or drops it (small, or too large for the bounds).
pub fn give<F: Float, D: Dimension>(array: Array<F, D>) {
    let len = array.len();
    if len * size_of::<F>() < MIN_BYTES {
        return;
    }
    let (buffer, _) = array.into_raw_vec_and_offset();
    if buffer.len() == len {
        F::with_workspace(|w| w.keep(buffer));
    }
}

/// Frees the calling thread's buffers.
pub fn clear() {
    f32::with_workspace(|w| w.kept.clear());
    f64::with_workspace(|w| w.kept.clear());
}

/// The bytes of the buffers the calling thread keeps.
pub fn held_bytes() -> usize {
    f32::with_workspace(|w| w.bytes()).unwrap_or(0)
        + f64::with_workspace(|w| w.bytes()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    const ELEMS: usize = MIN_BYTES / 8;

    #[test]
    fn a_buffer_is_taken_back_by_a_product_of_as_many_elements_only() {
        clear();
        give(Array2::<f64>::from_elem((2, ELEMS), 1.5));
        assert!(take::<f64>(ELEMS).is_none());
        assert!(take::<f32>(2 * ELEMS).is_none());
        let buffer = take::<f64>(2 * ELEMS).expect("kept");
        assert_eq!(buffer.len(), 2 * ELEMS);
        assert!(take::<f64>(2 * ELEMS).is_none());
        assert_eq!(held_bytes(), 0);
    }

    #[test]
    fn small_buffers_and_views_of_part_of_a_buffer_are_not_kept() {
        clear();
        give(Array2::<f64>::zeros((2, ELEMS / 4)));
        // An owned array of part of its buffer: the rest is not its.
        let mut part = Array2::<f64>::zeros((4, ELEMS));
        part.slice_axis_inplace(ndarray::Axis(0), ndarray::Slice::from(..2));
        give(part);
        assert_eq!(held_bytes(), 0);
    }

    #[test]
    fn the_oldest_buffers_go_first() {
        clear();
        for k in 1..=MAX_BUFFERS + 2 {
            give(Array2::<f64>::zeros((k, ELEMS)));
        }
        assert!(take::<f64>(ELEMS).is_none());
        assert!(take::<f64>(2 * ELEMS).is_none());
        for k in 3..=MAX_BUFFERS + 2 {
            assert!(take::<f64>(k * ELEMS).is_some(), "{k}");
        }
        // One buffer larger than all the bounds allow is dropped.
        give(Array2::<f32>::zeros((1, MAX_BYTES / 4 + 1)));
        assert_eq!(held_bytes(), 0);
    }
}
