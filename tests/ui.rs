//! Compile-time diagnostics: each case in `tests/ui/` is a minimal mistake, and its `.stderr`
//! holds the message `#[differentiable]` gives, at the span of the offending code.
//! Regenerate with `TRYBUILD=overwrite cargo test --test ui` and read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}
