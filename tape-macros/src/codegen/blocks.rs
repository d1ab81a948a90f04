//! Splitting a long `_grad` body into blocks, each a closure run as a function of its own.
//!
//! rustc's borrow checker and LLVM both grow faster than linearly with the length of one
//! function body. A tape of a thousand nodes is a straight line of some thousands of
//! statements, so [`split`] cuts it into blocks of a bounded size:
//!
//! ```ignore
//! let (mut __tape_v41, mut __tape_g40) = match ::tape::__private::fuse::block(|__tape_live| {
//!     /* the block's statements */
//!     *__tape_live = ::core::option::Option::Some((__tape_v41, __tape_g40));
//!     ::core::result::Result::Ok(())
//! }) {
//!     ::core::result::Result::Ok(live) => live,
//!     ::core::result::Result::Err(error) => return ::core::result::Result::Err(error),
//! };
//! ```
//!
//! The closure borrows what it reads, mutably borrows the gradient slots it adds into, takes
//! what it consumes, and hands back the locals it defines that later code reads. It hands
//! them back through `__tape_live` rather than returning them so that its return type is
//! known before its body is checked (see `fuse::block`): type-checking a 1,000-node body
//! then costs a third less, and no longer grows with the square of a block's length. Which locals
//! those are comes from a backward liveness pass over the blocks. Only the locals that name
//! a node (`__tape_v7`, `__tape_g7`, …) can be read by a later unit of code; every other
//! local (a fused loop's slices, a VJP's temporaries) lives and dies inside the unit that
//! made it, and a block never cuts a unit in two. A fused group that cannot run fused leaves
//! for the op-by-op path through `__tape_fallback!()`: in a block, that leaves the block
//! with its values unset (`fuse::block_or_unfused` returns `None`), and the function then
//! returns the gradient computed op by op. Any other unit that can `return` early stays in
//! the function itself, between blocks.

use proc_macro2::TokenStream;
use quote::quote;
use std::collections::BTreeSet;

use super::runtime;

/// A body of fewer tokens than this is left whole: small functions compile fast as they are,
/// and values stay in registers across the whole sweep. 56k tokens is about 280 nodes of
/// fused elementwise steps (W2's 260 nodes, 53k tokens, stay whole); a 300-node function of
/// independent terms is cut, which halves its release build (17.5 s to 8.7 s).
const SPLIT_ABOVE: usize = 56_000;

/// The size a block grows to before the next unit starts a new one, in tokens. Every block
/// is a closure, and an incremental `cargo check` hashes the whole function's type-check
/// results once per closure in it: fewer blocks check faster. LLVM grows faster than
/// linearly with a block's length. For the 1,008-node wide function, 6,000 tokens (29
/// blocks) checks with 18% fewer instructions than 2,000 (83 blocks) and builds for release
/// as fast (22 s); 12,000 checks 2% faster still but builds 20% slower, 30,000 three times
/// slower.
const BLOCK_TOKENS: usize = 6_000;

/// One unit of generated code: a node's forward `let`, its VJP block, a slot declaration.
pub enum Unit {
    /// Stays in the function: a declaration that blocks share (a gradient slot every later
    /// block adds into), cheaper to borrow than to hand from block to block.
    Fixed(TokenStream),
    /// May run inside a block.
    Free(TokenStream),
}

/// A unit and what a block needs to know of it.
struct Analyzed {
    tokens: TokenStream,
    size: usize,
    /// Node locals bound by its top-level `let`s.
    defines: BTreeSet<String>,
    /// Node locals it mentions anywhere.
    mentions: BTreeSet<String>,
    /// It must stay in the function: it is [`Unit::Fixed`], or it holds a `return` other
    /// than an error's.
    fixed: bool,
    /// It may leave for the op-by-op path (it calls [`fallback`]).
    falls_back: bool,
    /// It runs a fused loop ([`super::fuse::strip_loop`]).
    loops: bool,
}

/// The units of `body` in order, the code after them (`tail`) last: blocks where the body
/// is long, the units as they are where it is not.
///
/// With a `fallback` (`__tape_fallback!(params…)`, see [`fallback`]), units may leave for the
/// op-by-op path through it: the function defines the macro to return the gradient computed
/// op by op. Each block defines its own, which leaves the block with its values unset; the
/// function then evaluates `fallback`.
pub fn split(units: Vec<Unit>, tail: TokenStream, fallback: Option<&TokenStream>) -> TokenStream {
    let units: Vec<Analyzed> = units.into_iter().map(Analyzed::new).collect();
    let total: usize = units.iter().map(|u| u.size).sum();
    if total <= SPLIT_ABOVE {
        let tokens = units.into_iter().map(|u| u.tokens);
        return quote!(#(#tokens)* #tail);
    }
    let mut out = TokenStream::new();
    let mut live = mentions(&tail);
    let mut emitted = Vec::new();
    for run in runs(units).into_iter().rev() {
        let code = match run {
            Run::Inline(unit) => {
                live.retain(|name| !unit.defines.contains(name));
                live.extend(unit.mentions);
                unit.tokens
            }
            Run::Block(units) => {
                let defines: BTreeSet<String> = units
                    .iter()
                    .flat_map(|u| u.defines.iter().cloned())
                    .collect();
                let returned: Vec<proc_macro2::Ident> = defines
                    .iter()
                    .filter(|name| live.contains(*name))
                    .map(|name| proc_macro2::Ident::new(name, proc_macro2::Span::mixed_site()))
                    .collect();
                live.retain(|name| !defines.contains(name));
                for unit in &units {
                    live.extend(unit.mentions.iter().cloned());
                }
                let fallback = fallback.filter(|_| units.iter().any(|u| u.falls_back));
                // Already a function of its own: fused loops run in place.
                let loops = units
                    .iter()
                    .any(|u| u.loops)
                    .then(|| super::fuse::strip_loop_rules(true));
                let units = loops.into_iter().chain(units.into_iter().map(|u| u.tokens));
                block(units, &returned, fallback)
            }
        };
        emitted.push(code);
    }
    for code in emitted.into_iter().rev() {
        out.extend(code);
    }
    out.extend(tail);
    out
}

/// The name of the macro by which generated code leaves for the op-by-op path.
const FALLBACK: &str = "__tape_fallback";

/// The macro by which generated code leaves for the op-by-op path.
pub fn fallback() -> proc_macro2::Ident {
    proc_macro2::Ident::new(FALLBACK, proc_macro2::Span::call_site())
}

/// A definition of [`fallback`]: `leave`, a statement that returns, whatever the arguments.
pub fn fallback_rules(leave: TokenStream) -> TokenStream {
    let fallback = fallback();
    quote! {
        #[allow(unused_macros)]
        macro_rules! #fallback {
            ($($arg:expr),*) => { #leave };
        }
    }
}

/// The statement running `units` as a closure and binding the `returned` locals after it.
fn block(
    units: impl Iterator<Item = TokenStream>,
    returned: &[proc_macro2::Ident],
    fallback: Option<&TokenStream>,
) -> TokenStream {
    let rt = runtime();
    let live = proc_macro2::Ident::new("__tape_live", proc_macro2::Span::mixed_site());
    let set = quote! {
        *#live = ::core::option::Option::Some((#(#returned,)*));
        ::core::result::Result::Ok(())
    };
    let on_error = quote! {
        ::core::result::Result::Err(error) => return ::core::result::Result::Err(error),
    };
    let Some(call) = fallback else {
        return quote! {
            let (#(mut #returned,)*) = match #rt::fuse::block(|#live| { #(#units)* #set }) {
                ::core::result::Result::Ok(live) => live,
                #on_error
            };
        };
    };
    let leave = fallback_rules(quote!(return ::core::result::Result::Ok(())));
    quote! {
        let (#(mut #returned,)*) = match #rt::fuse::block_or_unfused(|#live| {
            #leave
            #(#units)*
            #set
        }) {
            ::core::result::Result::Ok(::core::option::Option::Some(live)) => live,
            ::core::result::Result::Ok(::core::option::Option::None) => #call,
            #on_error
        };
    }
}

/// Units grouped: blocks of about [`BLOCK_TOKENS`] tokens (more where a block less than half
/// full meets a long unit), and the units that stay in the function on their own.
enum Run {
    Inline(Analyzed),
    Block(Vec<Analyzed>),
}

fn runs(units: Vec<Analyzed>) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut current: Vec<Analyzed> = Vec::new();
    let mut size = 0;
    let flush = |current: &mut Vec<Analyzed>, size: &mut usize, runs: &mut Vec<Run>| {
        if !current.is_empty() {
            runs.push(Run::Block(std::mem::take(current)));
        }
        *size = 0;
    };
    for unit in units {
        if unit.fixed {
            flush(&mut current, &mut size, &mut runs);
            runs.push(Run::Inline(unit));
            continue;
        }
        // A block less than half full takes the next unit whatever its size: a long unit (a
        // fused group's loop) does not leave a short block of its own behind.
        if size + unit.size > BLOCK_TOKENS && size >= BLOCK_TOKENS / 2 {
            flush(&mut current, &mut size, &mut runs);
        }
        size += unit.size;
        current.push(unit);
    }
    flush(&mut current, &mut size, &mut runs);
    runs
}

impl Analyzed {
    fn new(unit: Unit) -> Analyzed {
        let (tokens, fixed) = match unit {
            Unit::Fixed(tokens) => (tokens, true),
            Unit::Free(tokens) => (tokens, false),
        };
        let mut scan = Scan::default();
        scan.top_level(&tokens);
        // A callee's pullback (and recorded tape) may borrow the values passed to the call,
        // so it is made in the function, where those values live until the sweep ends.
        let borrows = scan
            .defines
            .iter()
            .any(|name| name.starts_with("__tape_p") || name.starts_with("__tape_s"));
        Analyzed {
            tokens,
            size: scan.size,
            defines: scan.defines,
            mentions: scan.mentions,
            fixed: fixed || scan.returns || borrows,
            falls_back: scan.falls_back,
            loops: scan.loops,
        }
    }
}

/// One pass over a unit's tokens, read from their printed text: in a proc macro every token
/// read from a `TokenStream` is a call into the compiler, printing the unit is one.
#[derive(Default)]
struct Scan {
    /// Tokens seen, inside groups too.
    size: usize,
    /// Whether a `return` was seen.
    returns: bool,
    /// Whether the [`fallback`] macro was seen.
    falls_back: bool,
    /// Whether the fused loop's macro was seen.
    loops: bool,
    /// Node locals mentioned anywhere.
    mentions: BTreeSet<String>,
    /// Node locals bound by top-level `let`s: the names between `let` and the first `=`, `:`
    /// or `;` of the statement (patterns here are names and tuples of names). `if let` and
    /// `while let` bind only inside their block.
    defines: BTreeSet<String>,
}

impl Scan {
    fn top_level(&mut self, tokens: &TokenStream) {
        let text = tokens.to_string();
        // `in_pattern`: after a top-level `let`; `in_group`: inside a group that opened there.
        let (mut depth, mut in_pattern, mut in_group, mut after_if) = (0usize, false, false, false);
        for token in (Lexer { text: &text, at: 0 }) {
            let top = depth == 0;
            let mut is_if = false;
            match token {
                Token::Ident(name) => {
                    self.size += 1;
                    match name {
                        "return" => self.returns = true,
                        FALLBACK => self.falls_back = true,
                        super::fuse::STRIP_LOOP => self.loops = true,
                        "let" if top => in_pattern = !after_if,
                        "if" | "while" if top => is_if = true,
                        _ => {}
                    }
                    if is_node_local(name) {
                        self.mentions.insert(name.to_string());
                        if in_group || (top && in_pattern) {
                            self.defines.insert(name.to_string());
                        }
                    }
                }
                Token::Open => {
                    self.size += 1;
                    in_group |= top && in_pattern;
                    depth += 1;
                }
                Token::Close => {
                    depth = depth.saturating_sub(1);
                    in_group &= depth > 0;
                }
                Token::Punct(c) => {
                    self.size += 1;
                    if top && matches!(c, b'=' | b':' | b';') {
                        in_pattern = false;
                    }
                }
                Token::Literal => self.size += 1,
            }
            if top {
                after_if = is_if;
            }
        }
    }
}

/// A token of printed Rust code, as far as [`Scan`] tells them apart.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    /// An identifier or keyword (`r#name` for a raw one).
    Ident(&'a str),
    /// `(`, `[` or `{`.
    Open,
    /// `)`, `]` or `}`.
    Close,
    /// A punctuation character.
    Punct(u8),
    /// A string, character or number literal, or a lifetime.
    Literal,
}

/// The tokens of printed Rust code: literals are skipped whole, so that a string holding
/// `let` or a brace reads as one token.
struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    // Written with plain indexing and `matches!`, no closures or `get`: the proc macro runs
    // unoptimized under `cargo check`, where each of those is a call per byte.
    fn next(&mut self) -> Option<Token<'a>> {
        let bytes = self.text.as_bytes();
        loop {
            while self.at < bytes.len() && matches!(bytes[self.at], b' ' | b'\n' | b'\t' | b'\r') {
                self.at += 1;
            }
            if self.at + 1 < bytes.len() && bytes[self.at] == b'/' {
                match bytes[self.at + 1] {
                    b'/' => {
                        self.skip_line_comment();
                        continue;
                    }
                    b'*' => {
                        self.skip_block_comment();
                        continue;
                    }
                    _ => {}
                }
            }
            break;
        }
        if self.at >= bytes.len() {
            return None;
        }
        let first = bytes[self.at];
        let token = match first {
            b'(' | b'[' | b'{' => {
                self.at += 1;
                Token::Open
            }
            b')' | b']' | b'}' => {
                self.at += 1;
                Token::Close
            }
            b'"' => {
                self.string();
                Token::Literal
            }
            b'\'' => {
                self.quote();
                Token::Literal
            }
            b'0'..=b'9' => {
                self.number();
                Token::Literal
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' | 0x80.. => {
                let start = self.at;
                self.ident();
                let word = &self.text[start..self.at];
                let after = if self.at < bytes.len() {
                    bytes[self.at]
                } else {
                    b' '
                };
                match (word, after) {
                    ("r" | "br" | "cr", b'#' | b'"') if self.raw_string() => Token::Literal,
                    ("r", b'#') => {
                        self.at += 1;
                        self.ident();
                        Token::Ident(&self.text[start..self.at])
                    }
                    ("b" | "c", b'"') => {
                        self.string();
                        Token::Literal
                    }
                    ("b", b'\'') => {
                        self.quote();
                        Token::Literal
                    }
                    _ => Token::Ident(word),
                }
            }
            _ => {
                self.at += 1;
                Token::Punct(first)
            }
        };
        Some(token)
    }
}

impl Lexer<'_> {
    /// Past the bytes of an identifier (or a number's digits and suffix): ASCII letters,
    /// digits and `_`, and any byte of a non-ASCII character (outside literals, only
    /// identifiers hold those).
    fn ident(&mut self) {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len()
            && matches!(bytes[self.at], b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | 0x80..)
        {
            self.at += 1;
        }
    }

    /// A `"…"` literal from its opening quote, with its suffix.
    fn string(&mut self) {
        let bytes = self.text.as_bytes();
        self.at += 1;
        while self.at < bytes.len() {
            let b = bytes[self.at];
            self.at += if b == b'\\' { 2 } else { 1 };
            if b == b'"' {
                break;
            }
        }
        self.at = self.at.min(bytes.len());
        self.ident();
    }

    /// A raw string from the `#`s or quote after its prefix; `false` (nothing read) where
    /// the `#`s start a raw identifier instead.
    fn raw_string(&mut self) -> bool {
        let bytes = self.text.as_bytes();
        let mut quote = self.at;
        while quote < bytes.len() && bytes[quote] == b'#' {
            quote += 1;
        }
        if quote >= bytes.len() || bytes[quote] != b'"' {
            return false;
        }
        let hashes = quote - self.at;
        self.at = quote + 1;
        while self.at < bytes.len() {
            let close = bytes[self.at] == b'"'
                && bytes.len() - self.at > hashes
                && bytes[self.at + 1..=self.at + hashes]
                    .iter()
                    .all(|b| *b == b'#');
            self.at += 1;
            if close {
                self.at += hashes;
                break;
            }
        }
        self.ident();
        true
    }

    /// A character literal or a lifetime, from its quote.
    fn quote(&mut self) {
        let bytes = self.text.as_bytes();
        self.at += 1;
        if self.at < bytes.len() && bytes[self.at] == b'\\' {
            self.at += 2;
            while self.at < bytes.len() && bytes[self.at] != b'\'' {
                self.at += 1;
            }
            self.at = (self.at + 1).min(bytes.len());
            return;
        }
        let width = self.text[self.at..]
            .chars()
            .next()
            .map_or(0, char::len_utf8);
        if self.at + width < bytes.len() && bytes[self.at + width] == b'\'' {
            self.at += width + 1;
        } else {
            self.ident();
        }
    }

    /// A number, with a fraction and an exponent's sign where it has them.
    fn number(&mut self) {
        let bytes = self.text.as_bytes();
        let hex = self.text[self.at..].starts_with("0x");
        loop {
            self.ident();
            if self.at + 1 >= bytes.len() || !bytes[self.at + 1].is_ascii_digit() {
                return;
            }
            match bytes[self.at] {
                b'.' => self.at += 1,
                b'+' | b'-' if !hex && matches!(bytes[self.at - 1], b'e' | b'E') => self.at += 1,
                _ => return,
            }
        }
    }

    fn skip_line_comment(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.find('\n').unwrap_or(rest.len());
    }

    fn skip_block_comment(&mut self) {
        let bytes = self.text.as_bytes();
        let mut depth = 0usize;
        while self.at + 1 < bytes.len() {
            match (bytes[self.at], bytes[self.at + 1]) {
                (b'/', b'*') => {
                    depth += 1;
                    self.at += 2;
                }
                (b'*', b'/') => {
                    depth -= 1;
                    self.at += 2;
                    if depth == 0 {
                        return;
                    }
                }
                _ => self.at += 1,
            }
        }
        self.at = bytes.len();
    }
}

/// The node locals mentioned anywhere in `tokens`.
fn mentions(tokens: &TokenStream) -> BTreeSet<String> {
    let mut scan = Scan::default();
    scan.top_level(tokens);
    scan.mentions
}

/// Whether `name` is a local that names a node and so may be read by a later unit:
/// `__tape_` then one of the node prefixes (value, gradient slot, pullback, callee tape,
/// config, fused state, type witness, ghost, splat, moved value, index total, fixed-size
/// view) then the
/// node id (and for configs `_` and an index); or the auxiliary output, `__tape_aux`.
fn is_node_local(name: &str) -> bool {
    const PREFIXES: [&[u8]; 12] = [
        b"v", b"g", b"p", b"s", b"c", b"fuse", b"t", b"w", b"sp", b"m", b"ix", b"xa",
    ];
    // Plain indexing, as in `Lexer`: this runs for every identifier of the generated code.
    let bytes = name.as_bytes();
    if bytes.len() < 8 || bytes[..7] != *b"__tape_" {
        return false;
    }
    if name == "__tape_aux" {
        return true;
    }
    let rest = &bytes[7..];
    let mut at = 0;
    while at < rest.len() && rest[at].is_ascii_lowercase() {
        at += 1;
    }
    let prefix = &rest[..at];
    if !PREFIXES.contains(&prefix) {
        return false;
    }
    // The node id, then for a config `_` and its index.
    let digits = |at: &mut usize| {
        let start = *at;
        while *at < rest.len() && rest[*at].is_ascii_digit() {
            *at += 1;
        }
        *at > start
    };
    if !digits(&mut at) {
        return false;
    }
    if at == rest.len() {
        return true;
    }
    prefix == b"c" && rest[at] == b'_' && {
        at += 1;
        digits(&mut at) && at == rest.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_locals_are_told_from_unit_locals() {
        for name in [
            "__tape_v0",
            "__tape_g17",
            "__tape_fuse6",
            "__tape_c3_1",
            "__tape_ix2",
        ] {
            assert!(is_node_local(name), "{name}");
        }
        for name in [
            "__tape_x0",
            "__tape_shape",
            "__tape_g",
            "__tape_d1",
            "__tape_v",
            "x",
            "__tape_v1_2",
        ] {
            assert!(!is_node_local(name), "{name}");
        }
    }

    #[test]
    fn lets_define_and_everything_mentions() {
        let unit = Analyzed::new(Unit::Free(quote! {
            let (__tape_v6, __tape_v5) = f(__tape_v5, __tape_x0);
            let mut __tape_g6: Option<f64> = None;
            if let Some(__tape_g) = __tape_g7 { g(__tape_g, &mut __tape_g6); }
            if let Some(__tape_g0) = __tape_g0 { put(__tape_g0); }
        }));
        let names = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            unit.defines,
            names(&["__tape_v5", "__tape_v6", "__tape_g6"])
        );
        assert_eq!(
            unit.mentions,
            names(&[
                "__tape_v5",
                "__tape_v6",
                "__tape_g0",
                "__tape_g6",
                "__tape_g7"
            ])
        );
        assert!(!unit.fixed);
        assert!(
            Analyzed::new(Unit::Free(quote!(if bad {
                return fallback();
            })))
            .fixed
        );
        assert!(Analyzed::new(Unit::Fixed(quote!(let mut __tape_g1 = None;))).fixed);
    }

    #[test]
    fn literals_and_comments_hide_what_they_hold() {
        let text = r##"let __tape_v1 = f("let __tape_v2 = {\" }", '{', '\'', b'}', 'é',
            r#"}" __tape_v3"#, br"{", 'a, 1e-5, 0x1e-5, 1.5f64, r#match, x.0);
            // let __tape_v4 = {
            /* __tape_v5 /* { */ ( */ let (__tape_v6, __tape_v7): T = é;"##;
        let tokens: Vec<Token> = Lexer { text, at: 0 }.collect();
        let idents: Vec<&str> = tokens
            .iter()
            .filter_map(|t| match t {
                Token::Ident(name) => Some(*name),
                _ => None,
            })
            .collect();
        assert_eq!(
            idents,
            [
                "let",
                "__tape_v1",
                "f",
                "r#match",
                "x",
                "let",
                "__tape_v6",
                "__tape_v7",
                "T",
                "é"
            ]
        );
        let count = |want: Token| tokens.iter().filter(|t| **t == want).count();
        assert_eq!((count(Token::Open), count(Token::Close)), (2, 2));
        // The string, four characters, the raw strings, the lifetime, four numbers, `0`.
        assert_eq!(count(Token::Literal), 13);
        // The exponent's sign is the number's; a hexadecimal number's `-` is a minus.
        assert_eq!(count(Token::Punct(b'-')), 1);
        let mut scan = Scan::default();
        scan.top_level(&text.parse().expect("the text is Rust tokens"));
        let names = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(
            scan.defines,
            names(&["__tape_v1", "__tape_v6", "__tape_v7"])
        );
        assert_eq!(scan.mentions, scan.defines);
    }

    #[test]
    fn only_long_grad_bodies_are_cut() {
        let blocks = |steps: usize| {
            let f = quote! {
                fn f(x: &Array1<f64>, #[no_grad] c: &Array1<f64>, s: f64) -> f64 {
                    let mut total = 0.0;
                    for i in 0..#steps {
                        let u = x[i % 6] * c[i % 6] + s;
                        total += u * u;
                    }
                    total
                }
            };
            let out = crate::expand::differentiable(TokenStream::new(), f).to_string();
            out.matches("(| __tape_live |").count()
        };
        // Six nodes a step: 1,200 nodes are cut into blocks, 60 are left whole.
        assert!(blocks(200) >= 10, "{}", blocks(200));
        assert_eq!(blocks(10), 0);
    }

    #[test]
    fn long_bodies_become_blocks_returning_what_later_code_reads() {
        let units: Vec<Unit> = (0..4_000)
            .map(|i| {
                let (v, prev) = (
                    proc_macro2::Ident::new(
                        &format!("__tape_v{}", i + 1),
                        proc_macro2::Span::call_site(),
                    ),
                    proc_macro2::Ident::new(
                        &format!("__tape_v{i}"),
                        proc_macro2::Span::call_site(),
                    ),
                );
                Unit::Free(quote!(let #v = f(&#prev, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0);))
            })
            .collect();
        let out = split(units, quote!(Ok(__tape_v4000)), None).to_string();
        assert!(out.matches("fuse :: block").count() >= 4, "{out}");
        // Each block hands on only the last value it made.
        assert!(!out.contains("Ok ((__tape_v1 ,"), "{out}");
        assert!(out.ends_with("Ok (__tape_v4000)"), "{out}");
    }
}
