//! The macro never panics: thousands of generated and mutated function bodies go through
//! parsing, lowering and codegen (as `proc_macro2` token streams, outside the compiler), and
//! each ends in generated code or a compile error.

use crate::expand::differentiable;
use proc_macro2::{Group, TokenStream, TokenTree};
use quote::quote;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// A small deterministic generator (a 64-bit LCG): the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const NAMES: &[&str] = &[
    "x",
    "w",
    "b",
    "y",
    "n",
    "t",
    "zz",
    "F",
    "grads",
    "__tape_v0",
    "tape",
];
const METHODS: &[&str] = &[
    "exp", "ln", "dot", "t", "sum", "mean", "sum_axis", "powi", "powf", "clamp", "tanh", "max",
    "len", "mapv", "unwrap", "clone", "rev",
];
const FUNCTIONS: &[&str] = &[
    "tanh",
    "relu",
    "softmax",
    "mse",
    "cross_entropy",
    "maximum",
    "sum",
    "helper",
    "detach",
    "logsumexp",
    "F::from_f64",
];

/// A random expression of depth at most `depth`, valid or not.
fn expr(rng: &mut Rng, depth: usize) -> TokenStream {
    let leaf = depth == 0 || rng.below(3) == 0;
    if leaf {
        return match rng.below(6) {
            0 => quote!(2.0),
            1 => quote!(3),
            2 => quote!(Axis(1)),
            3 => quote!(std::f64::consts::PI),
            _ => rng.pick(NAMES).parse().unwrap_or_default(),
        };
    }
    let a = expr(rng, depth - 1);
    let b = expr(rng, depth - 1);
    match rng.below(12) {
        0 => quote!(#a + #b),
        1 => quote!(#a * &#b),
        2 => quote!(#a / #b - #b),
        3 => quote!(-#a),
        4 => quote!((#a)),
        5 => {
            let m: TokenStream = rng.pick(METHODS).parse().unwrap_or_default();
            if rng.below(2) == 0 {
                quote!(#a.#m())
            } else {
                quote!(#a.#m(#b))
            }
        }
        6 => {
            let f: TokenStream = rng.pick(FUNCTIONS).parse().unwrap_or_default();
            if rng.below(2) == 0 {
                quote!(#f(&#a))
            } else {
                quote!(#f(&#a, #b))
            }
        }
        7 => quote!(if #a > 0.0 { #b } else { #a }),
        8 => quote!({ let q = #a; q * #b }),
        9 => quote!(#a as f64),
        10 => quote!(match #a { _ => #b }),
        _ => quote!(|v| #a),
    }
}

/// A random statement.
fn stmt(rng: &mut Rng, depth: usize) -> TokenStream {
    let name: TokenStream = rng.pick(NAMES).parse().unwrap_or_default();
    let e = expr(rng, depth);
    match rng.below(10) {
        0..=2 => quote!(let #name = #e;),
        3 => quote!(let mut #name = #e;),
        4 => quote!(#name = #e;),
        5 => quote!(#name += #e;),
        6 => {
            let body = stmt(rng, depth.saturating_sub(1));
            let bound = rng.below(4);
            if rng.below(3) == 0 {
                quote!(for i in 0..n { #body })
            } else {
                quote!(for i in 0..#bound { #body })
            }
        }
        7 => {
            let body = stmt(rng, depth.saturating_sub(1));
            quote!(if n > 2 { #body })
        }
        8 => quote!(return #e;),
        _ => quote!(println!("{}", #e);),
    }
}

/// A random function: a signature from a few shapes, random statements, a random tail.
fn function(rng: &mut Rng) -> TokenStream {
    let signature = match rng.below(5) {
        0 => quote!(fn f(x: &Array1<f64>, w: &Array2<f64>, #[no_grad] b: f64, n: usize) -> f64),
        1 => quote!(fn f<F: tape::Float>(x: &Array1<F>, y: F) -> F),
        2 => quote!(fn f(x: f64, y: f64) -> (f64, Array1<f64>)),
        3 => quote!(pub fn f(x: &ArrayD<f32>, t: Array2<f32>) -> Array2<f32>),
        _ => quote!(async fn f(&self, x: &mut Array1<f64>) -> Vec<f64>),
    };
    let stmts: Vec<TokenStream> = (0..rng.below(6)).map(|_| stmt(rng, 3)).collect();
    let tail = if rng.below(8) == 0 {
        TokenStream::new()
    } else {
        expr(rng, 3)
    };
    quote!(#signature { #(#stmts)* #tail })
}

/// `tokens` with one random edit: a token dropped, duplicated or replaced, recursively into
/// groups.
fn mutate(rng: &mut Rng, tokens: TokenStream) -> TokenStream {
    let mut trees: Vec<TokenTree> = tokens.into_iter().collect();
    if trees.is_empty() {
        return TokenStream::new();
    }
    let i = rng.below(trees.len());
    match rng.below(4) {
        0 => {
            trees.remove(i);
        }
        1 => {
            let t = trees[i].clone();
            trees.insert(i, t);
        }
        2 => {
            let j = rng.below(trees.len());
            trees.swap(i, j);
        }
        _ => {
            if let TokenTree::Group(g) = &trees[i] {
                let inner = mutate(rng, g.stream());
                let mut group = Group::new(g.delimiter(), inner);
                group.set_span(g.span());
                trees[i] = TokenTree::Group(group);
            } else {
                trees[i] = TokenTree::Ident(proc_macro2::Ident::new(
                    "zz",
                    proc_macro2::Span::call_site(),
                ));
            }
        }
    }
    trees.into_iter().collect()
}

const SEEDS: &[&str] = &[
    "fn loss(w: &Array2<f64>, b: &Array1<f64>, #[no_grad] x: &Array2<f64>, #[no_grad] y: &Array2<f64>) -> f64 { let z = x.dot(w) + b; let h = tanh(&z); mse(&h, y) }",
    "fn chain(x: &Array1<f64>, a: &Array1<f64>) -> f64 { const N: usize = 4; let mut y = x.clone(); for i in 0..N { y = tanh(&(&y * a)) * (i as f64); } y.sum() }",
    "fn branch(x: &Array1<f64>, mode: i32) -> f64 { if mode > 0 { (x * x).sum() } else if mode < 0 { x.exp().sum() } else { x.sum() } }",
    "fn calls(w: &Array2<f64>, x: &Array2<f64>) -> (f64, usize) { let h = nn::layer(w, &x); let s = h.sum(); (s, detach(&h).len()) }",
    "fn g<F: tape::Float>(x: &Array1<F>) -> F { let h = F::from_f64(0.5); (x * h).mean().unwrap() }",
];

#[test]
fn no_input_makes_the_macro_panic() {
    let mut rng = Rng(0x5EED);
    let mut cases = 0;
    let mut generated_code = 0;
    let mut errors = 0;
    let mut run = |tokens: TokenStream, cases: &mut usize| {
        let args = if *cases % 97 == 0 {
            quote!(oops)
        } else {
            TokenStream::new()
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| differentiable(args, tokens.clone())));
        *cases += 1;
        match outcome {
            Ok(out) if out.to_string().contains("compile_error") => errors += 1,
            Ok(_) => generated_code += 1,
            Err(_) => panic!("the macro panicked on:\n{tokens}"),
        }
    };
    for _ in 0..6_000 {
        run(function(&mut rng), &mut cases);
    }
    for i in 0..6_000 {
        let seed: TokenStream = SEEDS[i % SEEDS.len()].parse().unwrap_or_default();
        let mut tokens = seed;
        for _ in 0..1 + rng.below(3) {
            tokens = mutate(&mut rng, tokens);
        }
        run(tokens, &mut cases);
    }
    // Written past the test harness's capture, so that the count shows in every test run.
    let _ = writeln!(
        std::io::stderr(),
        "macro fuzz: {cases} bodies, {generated_code} expanded to gradient code, {errors} to compile errors, 0 panics"
    );
    assert!(cases >= 10_000);
    assert!(
        generated_code > 100 && errors > 100,
        "{generated_code} expansions, {errors} errors"
    );
}

/// A function of about `steps × 4` nodes: a chain of `tanh(y ⊙ a + b)` steps written out, or
/// a wide sum of independent terms.
pub fn sized_function(steps: usize, wide: bool) -> TokenStream {
    let lines: Vec<TokenStream> = (0..steps)
        .map(|i| {
            let t = proc_macro2::Ident::new(&format!("t{i}"), proc_macro2::Span::call_site());
            if wide {
                quote!(let #t = tanh(&(x * a + b)).sum(); total = total + #t;)
            } else {
                quote!(y = tanh(&(&y * a + b)) * x;)
            }
        })
        .collect();
    quote! {
        fn sized(x: &Array1<f64>, a: &Array1<f64>, b: &Array1<f64>) -> f64 {
            let mut y = x * 1.0;
            let mut total = 0.0;
            #(#lines)*
            y.sum() + total
        }
    }
}

/// Expansion time by tape size: `cargo test -p tape-macros --release expansion_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement for scripts/benchmarks.py, not a check"]
fn expansion_cost() {
    for (steps, wide) in [
        (25, false),
        (75, false),
        (250, false),
        (20, true),
        (60, true),
        (200, true),
    ] {
        let input = sized_function(steps, wide);
        let nodes = differentiable(TokenStream::new(), input.clone())
            .to_string()
            .matches("NodeInfo {")
            .count();
        let start = std::time::Instant::now();
        let runs = 5;
        for _ in 0..runs {
            drop(differentiable(TokenStream::new(), input.clone()));
        }
        let per_run = start.elapsed().as_secs_f64() / f64::from(runs);
        println!(
            "expansion {} {nodes} nodes: {:.2} ms",
            if wide { "wide" } else { "chain" },
            per_run * 1e3
        );
    }
}
