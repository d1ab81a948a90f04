//! Generated code cannot capture or shadow the user's names: locals, parameters, functions and
//! items named like generated ones or like the runtime's leave expansion and results intact.

mod common;

use ::tape::prelude::*;
use common::*;

// User items named like the runtime's, in scope where the generated code expands.
#[allow(dead_code)]
struct Acc;
#[allow(dead_code)]
fn at() {}
#[allow(dead_code)]
mod ops {}
#[allow(dead_code)]
type TapeError = ();
#[allow(dead_code)]
mod tape {}

// Parameters and locals named like generated locals, a type parameter named `F`.
// f = Σ (grads·g0 + __tape_g0)² with __tape_v0 = grads·g0:  ∂f/∂grads = 2(grads·g0 + t)·g0
#[differentiable]
fn clash<F: ::tape::Float>(grads: &Array1<F>, g0: F, __tape_g0: F) -> F {
    let __tape_v0 = grads * g0;
    let __tape_g = &__tape_v0 + __tape_g0;
    (&__tape_g * &__tape_g).sum()
}

// A user function named `grad`, whose generated items are `grad_grad` and `GradGrad`.
#[differentiable]
fn grad(x: f64) -> f64 {
    x * x * x
}

#[test]
fn user_names_do_not_collide() {
    let x = vec1(3, 1, -1.0, 1.0);
    let g = clash_grad(&x, 0.5, 0.25).unwrap();
    assert_eq!(g.value, clash(&x, 0.5, 0.25));
    check_analytic("grads", &g.grads, &(2.0 * (&x * 0.5 + 0.25) * 0.5));
    check_fd("grads", &g.grads, &x, |x| clash(x, 0.5, 0.25));
    check_fd_scalar("g0", g.g0, 0.5, |g0| clash(&x, g0, 0.25));
    check_fd_scalar("__tape_g0", g.__tape_g0, 0.25, |t| clash(&x, 0.5, t));
    let g: GradGrad = grad_grad(2.0).unwrap();
    assert_eq!((g.value, g.x), (8.0, 12.0));
    assert_eq!(grad(2.0), 8.0);
}
