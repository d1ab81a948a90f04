//! THE op table: every piece of syntax `#[differentiable]` recognises, and the runtime kernel
//! it becomes.
//!
//! Lowering looks ops up only here, and codegen reads only the row, so adding an op is one row
//! below plus `op` and `op_vjp` in `tape-runtime/src/ops/<family>.rs`.

/// How an op is spelled in the user's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// A method: `x.exp()`; the receiver is the first operand.
    Method(&'static str),
    /// A prelude function: `tanh(&z)`.
    Function(&'static str),
    /// A binary operator: `a + b`.
    Binary(&'static str),
    /// A unary operator: `-x`.
    Unary(&'static str),
    /// Indexing with a constant: `x[i]`.
    Index,
}

/// The type of a constant argument, which the recorded tape stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// `i32` (the exponent of `powi`).
    I32,
    /// The function's float type (the exponent of `powf`, the bounds of `clamp`).
    Elem,
    /// `ndarray::Axis`.
    Axis,
    /// `usize` (an index).
    Usize,
}

/// What an op returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// A scalar or an array, by the operands (`tanh` of a scalar is a scalar).
    Tensor,
    /// Always a scalar (`sum`, `mean`, the losses).
    Scalar,
}

/// One row of the table.
#[derive(Debug, PartialEq, Eq)]
pub struct OpSpec {
    /// `NodeInfo::op`, and the name in messages.
    pub name: &'static str,
    /// The runtime kernel: `ops::<family>::<kernel>` and `<kernel>_vjp` (and `ops::elem`'s
    /// functions of the same names for elementwise ops). Usually the name; `exp_std` for
    /// `x.exp()`, which computes as the method the user's own function calls.
    pub kernel: &'static str,
    /// The runtime module holding the kernel.
    pub family: &'static str,
    /// Every spelling that lowers to this op.
    pub syntax: &'static [Syntax],
    /// Differentiable operands (the receiver of a method counts as the first).
    pub operands: usize,
    /// Constant arguments after the operands (`n` in `x.powi(n)`, the axis of `sum_axis`).
    pub configs: &'static [Config],
    /// What the op returns.
    pub output: Output,
    /// Elementwise: `ops::elem::<name>` and `<name>_vjp` compute it on one float, which
    /// generated code calls directly where every operand is a scalar.
    pub elementwise: bool,
    /// What the op's VJP reads besides the cotangent (values, not just shapes): a fused loop
    /// keeps just those values for its backward pass, and `_grad` may reuse the buffer of a
    /// value no later VJP reads. `Both` unless the row says otherwise.
    pub reads: Reads,
    /// A reduction whose VJP gives every element of its operand one scalar cotangent,
    /// `reuse::<name>_splat(ḡ, x)` (`sum`, `mean`): the operand's own VJP can run on that
    /// scalar instead of a filled array.
    pub splat: bool,
    /// The VJP has a variant `<vjp>_owned` that takes its first operand by value and writes
    /// that operand's gradient into its buffer (`cross_entropy`'s logits).
    pub owned_vjp: bool,
    /// The array kernel checks something `ops::elem` does not (`ln`'s domain, `clamp`'s
    /// bounds), so scalars go through the kernel too.
    pub checked: bool,
    /// ndarray's method returns an `Option` (`mean`, `mean_axis`): the user writes
    /// `.unwrap()` or `.expect(..)` after it, and the prelude function returns the value.
    pub returns_option: bool,
    /// Which of the elementwise kernel and its VJP are long (`tanh`, `sin`): a fused loop
    /// calls one shared copy of their strip loop instead of inlining it at every node.
    pub heavy: Heavy,
    /// A `fuse::<name>(&strip)` that computes the kernel on a whole strip at once
    /// (`tanh_shared`): a fused loop calls it instead of the kernel, and `_grad` passes it to
    /// `reuse::unary_strips` where it computes the op in its operand's buffer.
    pub strip: Option<&'static str>,
    /// A few instructions an element (`add`, `mul`): where a fused loop's backward pass reads
    /// such a member and has its operands' strips at hand, it computes the member again
    /// rather than keep a copy of it (the steps of a chain keep half as much).
    pub cheap: bool,
    /// A sum or difference (`add`, `sub`): its VJP passes the cotangent on to both operands,
    /// negated for a difference's second. A running sum is made of them, and a scalar one
    /// reverses in one call, `ops::elem::<kernel>_back`.
    pub passes: bool,
}

/// Which halves of an elementwise op a fused loop calls out of line, so that a chain of many
/// such nodes is not one body of tens of kilobytes, slowed by instruction-cache misses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heavy {
    /// Neither: a few instructions each (`add`, `relu`, `sqrt`).
    Neither,
    /// The kernel (`tanh`, `exp`); its VJP is a product or two.
    Kernel,
    /// Both (`sin`, whose VJP computes `cos`).
    Both,
}

impl Heavy {
    /// Whether the kernel is called out of line.
    pub fn kernel(self) -> bool {
        self != Heavy::Neither
    }

    /// Whether the VJP is called out of line.
    pub fn vjp(self) -> bool {
        self == Heavy::Both
    }
}

use Syntax::{Binary, Function, Method, Unary};

const fn op(
    name: &'static str,
    family: &'static str,
    syntax: &'static [Syntax],
    operands: usize,
    configs: &'static [Config],
) -> OpSpec {
    OpSpec {
        name,
        kernel: name,
        family,
        syntax,
        operands,
        configs,
        output: Output::Tensor,
        elementwise: false,
        reads: Reads::Both,
        owned_vjp: false,
        splat: false,
        checked: false,
        returns_option: false,
        heavy: Heavy::Neither,
        strip: None,
        cheap: false,
        passes: false,
    }
}

/// What an op's VJP reads besides the cotangent (for elementwise ops, `ops::elem::<op>_vjp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Nothing (`add`, `sub`, `neg`).
    Nothing,
    /// The operands (`mul`: `ā = ḡ·b`).
    Operands,
    /// The output (`tanh`: `x̄ = ḡ·(1 − y²)`).
    Output,
    /// Both (`sqrt`).
    Both,
}

impl Reads {
    /// Whether the VJP reads the operands.
    pub fn operands(self) -> bool {
        matches!(self, Reads::Operands | Reads::Both)
    }

    /// Whether the VJP reads the output.
    pub fn output(self) -> bool {
        matches!(self, Reads::Output | Reads::Both)
    }
}

impl OpSpec {
    /// The same row, for an op whose ndarray method returns an `Option`.
    const fn returning_option(self) -> OpSpec {
        OpSpec {
            returns_option: true,
            ..self
        }
    }

    /// The same row, for an elementwise op with its math in `ops::elem`, whose VJP reads
    /// `reads`.
    const fn elementwise(self, reads: Reads) -> OpSpec {
        OpSpec {
            elementwise: true,
            reads,
            ..self
        }
    }

    /// The same row, for an elementwise op whose kernel checks its operands.
    const fn checked(self, reads: Reads) -> OpSpec {
        OpSpec {
            checked: true,
            ..self.elementwise(reads)
        }
    }

    /// The same row, for an op whose VJP reads `reads`.
    const fn reads(self, reads: Reads) -> OpSpec {
        OpSpec { reads, ..self }
    }

    /// The same row, for a reduction with a `reuse::<name>_splat`.
    const fn splat(self) -> OpSpec {
        OpSpec {
            splat: true,
            ..self
        }
    }

    /// The same row, for an op with a `<vjp>_owned` variant.
    const fn owned_vjp(self) -> OpSpec {
        OpSpec {
            owned_vjp: true,
            ..self
        }
    }

    /// The same row, for an elementwise op whose kernel (and VJP, as `heavy` says) a fused
    /// loop calls out of line.
    const fn heavy(self, heavy: Heavy) -> OpSpec {
        OpSpec { heavy, ..self }
    }

    /// The same row, for an elementwise op with a strip kernel `fuse::<strip>`.
    const fn strip(self, strip: &'static str) -> OpSpec {
        OpSpec {
            strip: Some(strip),
            ..self
        }
    }

    /// The same row, for an op of a few instructions an element.
    const fn cheap(self) -> OpSpec {
        OpSpec {
            cheap: true,
            ..self
        }
    }

    /// The same row, for a sum or difference (see [`OpSpec::passes`]).
    const fn passes(self) -> OpSpec {
        OpSpec {
            passes: true,
            ..self
        }
    }

    /// The same row, computed by kernel `kernel`.
    const fn kernel(self, kernel: &'static str) -> OpSpec {
        OpSpec { kernel, ..self }
    }

    /// The kernel's name: `add`.
    pub fn kernel_ident(&self) -> proc_macro2::Ident {
        proc_macro2::Ident::new(self.kernel, proc_macro2::Span::call_site())
    }

    /// The strip kernel's name, `tanh_shared`, for an op that has one.
    pub fn strip_ident(&self) -> Option<proc_macro2::Ident> {
        self.strip
            .map(|strip| proc_macro2::Ident::new(strip, proc_macro2::Span::call_site()))
    }

    /// The kernel's VJP's name: `add_vjp`.
    pub fn vjp_ident(&self) -> proc_macro2::Ident {
        proc_macro2::Ident::new(
            &format!("{}_vjp", self.kernel),
            proc_macro2::Span::call_site(),
        )
    }

    /// The reverse step of a scalar sum or difference, `add_back`, for an op that
    /// [`passes`](OpSpec::passes) its cotangent on.
    pub fn back_ident(&self) -> Option<proc_macro2::Ident> {
        self.passes.then(|| {
            proc_macro2::Ident::new(
                &format!("{}_back", self.kernel),
                proc_macro2::Span::call_site(),
            )
        })
    }

    /// The same row, for an op that always returns a scalar.
    const fn scalar_output(self) -> OpSpec {
        OpSpec {
            output: Output::Scalar,
            ..self
        }
    }
}

const NOTHING: Reads = Reads::Nothing;
const OPERANDS: Reads = Reads::Operands;
const OUTPUT: Reads = Reads::Output;
const BOTH: Reads = Reads::Both;

const NONE: &[Config] = &[];
const I32: &[Config] = &[Config::I32];
const ELEM: &[Config] = &[Config::Elem];
const BOUNDS: &[Config] = &[Config::Elem, Config::Elem];
const AXIS: &[Config] = &[Config::Axis];
const USIZE: &[Config] = &[Config::Usize];

/// The table.
#[rustfmt::skip]
pub static OPS: &[OpSpec] = &[
    // arithmetic
    op("add", "arith", &[Binary("+")], 2, NONE).elementwise(NOTHING).cheap().passes(),
    op("sub", "arith", &[Binary("-")], 2, NONE).elementwise(NOTHING).cheap().passes(),
    op("mul", "arith", &[Binary("*")], 2, NONE).elementwise(OPERANDS).cheap(),
    op("div", "arith", &[Binary("/")], 2, NONE).elementwise(OPERANDS),
    op("neg", "arith", &[Unary("-"), Function("neg")], 1, NONE).elementwise(NOTHING).cheap(),
    // unary
    // `exp(&x)` computes with `math::exp`, which vectorizes; `x.exp()` as the method does, so
    // that `f_grad(x).value` is exactly `f(x)`. Likewise `tanh`.
    op("exp", "unary", &[Function("exp")], 1, NONE).elementwise(OUTPUT).heavy(Heavy::Kernel),
    op("exp", "unary", &[Method("exp")], 1, NONE).elementwise(OUTPUT).kernel("exp_std").heavy(Heavy::Kernel),
    op("ln", "unary", &[Method("ln"), Function("ln"), Function("log")], 1, NONE).checked(OPERANDS).heavy(Heavy::Kernel),
    op("sqrt", "unary", &[Method("sqrt"), Function("sqrt")], 1, NONE).elementwise(BOTH),
    op("powi", "unary", &[Method("powi"), Function("powi")], 1, I32).elementwise(OPERANDS),
    op("powf", "unary", &[Method("powf"), Function("powf")], 1, ELEM).elementwise(OPERANDS).heavy(Heavy::Both),
    op("abs", "unary", &[Method("abs"), Function("abs")], 1, NONE).elementwise(OPERANDS),
    op("sin", "unary", &[Method("sin"), Function("sin")], 1, NONE).elementwise(OPERANDS).heavy(Heavy::Both),
    op("cos", "unary", &[Method("cos"), Function("cos")], 1, NONE).elementwise(OPERANDS).heavy(Heavy::Both),
    op("tanh", "unary", &[Function("tanh")], 1, NONE).elementwise(OUTPUT).heavy(Heavy::Kernel).strip("tanh_shared"),
    op("tanh", "unary", &[Method("tanh")], 1, NONE).elementwise(OUTPUT).kernel("tanh_std").heavy(Heavy::Kernel),
    op("sigmoid", "unary", &[Function("sigmoid")], 1, NONE).elementwise(OUTPUT).heavy(Heavy::Kernel),
    op("relu", "unary", &[Function("relu")], 1, NONE).elementwise(OPERANDS),
    op("softplus", "unary", &[Function("softplus")], 1, NONE).elementwise(OPERANDS).heavy(Heavy::Both),
    op("gelu", "unary", &[Function("gelu")], 1, NONE).elementwise(OPERANDS).heavy(Heavy::Both),
    // binary elementwise
    op("maximum", "compare", &[Function("maximum"), Method("max")], 2, NONE).elementwise(OPERANDS),
    op("minimum", "compare", &[Function("minimum"), Method("min")], 2, NONE).elementwise(OPERANDS),
    op("clamp", "compare", &[Method("clamp"), Function("clamp")], 1, BOUNDS).checked(OPERANDS),
    // linear algebra
    op("dot", "linalg", &[Method("dot"), Function("dot")], 2, NONE).reads(OPERANDS),
    op("transpose", "linalg", &[Method("t"), Method("reversed_axes"), Function("transpose")], 1, NONE).reads(NOTHING),
    // reductions
    op("sum", "reduce", &[Method("sum"), Function("sum")], 1, NONE).scalar_output().reads(NOTHING).splat(),
    op("mean", "reduce", &[Method("mean"), Function("mean")], 1, NONE).returning_option().scalar_output().reads(NOTHING).splat(),
    op("sum_axis", "reduce", &[Method("sum_axis"), Function("sum_axis")], 1, AXIS).reads(NOTHING),
    op("mean_axis", "reduce", &[Method("mean_axis"), Function("mean_axis")], 1, AXIS).returning_option().reads(NOTHING),
    op("index", "reduce", &[Syntax::Index], 1, USIZE).scalar_output().reads(NOTHING),
    // softmax family
    op("softmax", "softmax", &[Function("softmax")], 1, NONE).reads(OUTPUT),
    op("log_softmax", "softmax", &[Function("log_softmax")], 1, NONE).reads(OUTPUT),
    op("logsumexp", "softmax", &[Function("logsumexp")], 1, NONE),
    // losses
    op("mse", "loss", &[Function("mse")], 2, NONE).scalar_output().reads(OPERANDS),
    op("cross_entropy", "loss", &[Function("cross_entropy")], 2, NONE).scalar_output().reads(OPERANDS).owned_vjp(),
];

/// Methods that return their receiver's value unchanged (`x.clone()`, `x.view()`): no node.
pub static IDENTITY_METHODS: &[&str] = &["clone", "to_owned", "view"];

/// Methods that read only a value's shape (`x.len() as f64`): allowed on differentiable
/// values inside constant expressions, since no derivative flows through a shape.
pub static SHAPE_METHODS: &[&str] = &[
    "len", "len_of", "nrows", "ncols", "ndim", "dim", "raw_dim", "shape", "is_empty",
];

/// Functions whose arguments are read without a derivative (`detach(&x)`): allowed, even for
/// differentiable values, inside constant expressions and branch conditions.
pub static DETACH_FUNCTIONS: &[&str] = &["detach"];

/// Methods that unwrap an `Option`-returning op (`x.mean().unwrap()`).
pub static UNWRAP_METHODS: &[&str] = &["unwrap", "expect"];

fn find(syntax: Syntax) -> Option<&'static OpSpec> {
    OPS.iter().find(|op| op.syntax.contains(&syntax))
}

/// The op a method name lowers to.
pub fn by_method(name: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|op| {
        op.syntax
            .iter()
            .any(|s| matches!(s, Method(m) if *m == name))
    })
}

/// The op a prelude function name lowers to.
pub fn by_function(name: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|op| {
        op.syntax
            .iter()
            .any(|s| matches!(s, Function(f) if *f == name))
    })
}

/// The op a binary operator lowers to.
pub fn by_binary(symbol: &'static str) -> Option<&'static OpSpec> {
    find(Binary(symbol))
}

/// The op indexing lowers to.
pub fn by_index() -> Option<&'static OpSpec> {
    find(Syntax::Index)
}

/// The op a unary operator lowers to.
pub fn by_unary(symbol: &'static str) -> Option<&'static OpSpec> {
    find(Unary(symbol))
}

fn names(pick: impl Fn(&Syntax) -> Option<&'static str>, extra: &[&'static str]) -> String {
    let mut names: Vec<&str> = OPS
        .iter()
        .flat_map(|op| op.syntax.iter().filter_map(&pick))
        .collect();
    names.extend_from_slice(extra);
    names.sort_unstable();
    names.dedup();
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every supported method, for messages.
pub fn method_names() -> String {
    names(
        |s| if let Method(m) = s { Some(m) } else { None },
        IDENTITY_METHODS,
    )
}

/// Every supported operator, for messages.
pub fn operator_names() -> String {
    names(
        |s| match s {
            Binary(o) | Unary(o) => Some(o),
            _ => None,
        },
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_names_one_op() {
        let mut seen = Vec::new();
        for op in OPS {
            for s in op.syntax {
                assert!(!seen.contains(s), "{s:?} is in the table twice");
                seen.push(*s);
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(by_method("dot").map(|o| o.name), Some("dot"));
        assert_eq!(by_function("log").map(|o| o.name), Some("ln"));
        assert_eq!(by_binary("/").map(|o| o.name), Some("div"));
        assert_eq!(by_unary("-").map(|o| o.name), Some("neg"));
        assert!(by_method("mapv").is_none());
        assert!(method_names().contains("`sum_axis`"));
    }
}
