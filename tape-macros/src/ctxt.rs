//! [`Ctxt`]: collects every error of one expansion, so one build reports them all.

use proc_macro2::Span;
use std::fmt::Display;

/// An error accumulator. Lowering pushes an error and carries on where it can; `finish`
/// combines them into one `syn::Error` whose parts keep their own spans.
#[derive(Default)]
pub struct Ctxt {
    errors: Vec<syn::Error>,
    /// Errors are dropped while set: the body of an unrolled loop is lowered once per
    /// iteration, and only the first iteration reports.
    pub muted: bool,
}

impl Ctxt {
    /// An empty accumulator.
    pub fn new() -> Self {
        Ctxt::default()
    }

    /// Records an error at `span`.
    pub fn push(&mut self, span: Span, message: impl Display) {
        self.add(syn::Error::new(span, message));
    }

    /// Records an error spanning the tokens of `tokens` (first to last).
    pub fn push_spanned(&mut self, tokens: &impl quote::ToTokens, message: impl Display) {
        self.add(syn::Error::new_spanned(tokens, message));
    }

    fn add(&mut self, error: syn::Error) {
        if !self.muted {
            self.errors.push(error);
        }
    }

    /// Records an error even while muted.
    pub fn push_always(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Whether any error was recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// `Ok(())` if nothing was recorded, else every error combined into one.
    pub fn finish(self) -> syn::Result<()> {
        let mut errors = self.errors.into_iter();
        match errors.next() {
            None => Ok(()),
            Some(mut first) => {
                for error in errors {
                    first.combine(error);
                }
                Err(first)
            }
        }
    }
}
