//! Trains a small neural network on Fisher's iris flowers, with the gradients that
//! `#[differentiable]` generates.
//!
//! `cargo run --release --example train`
//!
//! - Data: the iris set as `linfa-datasets` ships it (150 flowers, 4 measurements each, 3
//!   species, 50 of each), split by species into 120 for training and 30 for testing, and
//!   standardized with the training split's mean and spread.
//! - Model: 4 inputs → 16 tanh units → 3 logits; the loss is the mean softmax cross-entropy
//!   plus an L2 penalty on the weights (`loss` below, an ordinary function).
//! - Training: Adam on minibatches of 20, 200 epochs, every gradient from `loss_grad`.
//! - Output: a progress bar, the final train and test accuracy, a check of the gradient
//!   against central differences, and the loss curves as `target/train_loss.png`.
//!
//! Everything is seeded: the run is the same on every machine.

use indicatif::{ProgressBar, ProgressStyle};
use std::error::Error;
use std::path::Path;
use tape::ndarray::{Dimension, Zip};
use tape::prelude::*;

/// The training loss: mean softmax cross-entropy of a one-hidden-layer network on the batch
/// `x` (one row per sample) against one-hot labels `y`, plus `l2 / 2` times the sum of the
/// squared weights.
#[differentiable]
pub fn loss(
    w1: &Array2<f64>,
    b1: &Array1<f64>,
    w2: &Array2<f64>,
    b2: &Array1<f64>,
    #[no_grad] x: &Array2<f64>,
    #[no_grad] y: &Array2<f64>,
    #[no_grad] l2: f64,
) -> f64 {
    let h = tanh(&(x.dot(w1) + b1));
    let logits = h.dot(w2) + b2;
    let penalty = (w1 * w1).sum() + (w2 * w2).sum();
    cross_entropy(&logits, y) + 0.5 * l2 * penalty
}

/// The number of species.
pub const CLASSES: usize = 3;

/// The iris set, split and standardized.
pub struct Iris {
    /// Training measurements, one row per flower.
    pub x_train: Array2<f64>,
    /// Training species, one-hot.
    pub y_train: Array2<f64>,
    /// Test measurements.
    pub x_test: Array2<f64>,
    /// Test species, one-hot.
    pub y_test: Array2<f64>,
}

/// Loads the iris set from `linfa-datasets` (compiled into the binary) and splits it: of each
/// species, `test_per_class` flowers drawn at random for testing, the rest for training.
pub fn load_iris(rng: &mut Rng, test_per_class: usize) -> Iris {
    // linfa-datasets builds on another ndarray release: its arrays are read element by element.
    let iris = linfa_datasets::iris();
    let (n, features) = (iris.records.nrows(), iris.records.ncols());
    let records: Vec<f64> = iris.records.iter().copied().collect();
    let x = Array2::from_shape_vec((n, features), records).expect("iris is 150 × 4");
    let labels: Vec<usize> = iris.targets.iter().copied().collect();

    let (mut train, mut test) = (Vec::new(), Vec::new());
    for class in 0..CLASSES {
        let mut members: Vec<usize> = (0..n).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut members);
        test.extend_from_slice(&members[..test_per_class]);
        train.extend_from_slice(&members[test_per_class..]);
    }
    let x_train = x.select(Axis(0), &train);
    let mean = x_train
        .mean_axis(Axis(0))
        .expect("training split is not empty");
    let spread = x_train.std_axis(Axis(0), 0.0);
    let standardize = |rows: &[usize]| (&x.select(Axis(0), rows) - &mean) / &spread;
    Iris {
        x_train: standardize(&train),
        y_train: one_hot(&train.iter().map(|&i| labels[i]).collect::<Vec<_>>()),
        x_test: standardize(&test),
        y_test: one_hot(&test.iter().map(|&i| labels[i]).collect::<Vec<_>>()),
    }
}

/// One row per label, 1 in the label's column.
pub fn one_hot(labels: &[usize]) -> Array2<f64> {
    Array2::from_shape_fn((labels.len(), CLASSES), |(i, c)| {
        if labels[i] == c { 1.0 } else { 0.0 }
    })
}

/// The network's parameters.
#[derive(Clone)]
pub struct Mlp {
    /// Input to hidden weights, `[4, hidden]`.
    pub w1: Array2<f64>,
    /// Hidden biases.
    pub b1: Array1<f64>,
    /// Hidden to output weights, `[hidden, 3]`.
    pub w2: Array2<f64>,
    /// Output biases.
    pub b2: Array1<f64>,
}

impl Mlp {
    /// Glorot-uniform weights, zero biases.
    pub fn new(rng: &mut Rng, inputs: usize, hidden: usize) -> Mlp {
        let mut glorot = |rows: usize, cols: usize| {
            let limit = (6.0 / (rows + cols) as f64).sqrt();
            Array2::from_shape_fn((rows, cols), |_| limit * (2.0 * rng.uniform() - 1.0))
        };
        Mlp {
            w1: glorot(inputs, hidden),
            b1: Array1::zeros(hidden),
            w2: glorot(hidden, CLASSES),
            b2: Array1::zeros(CLASSES),
        }
    }

    /// The loss on `(x, y)`.
    pub fn loss(&self, x: &Array2<f64>, y: &Array2<f64>, l2: f64) -> f64 {
        loss(&self.w1, &self.b1, &self.w2, &self.b2, x, y, l2)
    }

    /// The loss on `(x, y)` and its gradient with respect to every parameter.
    ///
    /// # Errors
    /// As [`loss_grad`]: a [`TapeError`] when the shapes do not fit.
    pub fn grad(&self, x: &Array2<f64>, y: &Array2<f64>, l2: f64) -> Result<LossGrad, TapeError> {
        loss_grad(&self.w1, &self.b1, &self.w2, &self.b2, x, y, l2)
    }

    /// The share of rows of `x` whose largest logit is at the one-hot label's column.
    pub fn accuracy(&self, x: &Array2<f64>, y: &Array2<f64>) -> f64 {
        let logits = tanh(&(x.dot(&self.w1) + &self.b1)).dot(&self.w2) + &self.b2;
        let hits = logits
            .rows()
            .into_iter()
            .zip(y.rows())
            .filter(|(z, y)| y[argmax(z.iter())] == 1.0)
            .count();
        hits as f64 / x.nrows() as f64
    }
}

fn argmax<'a>(values: impl Iterator<Item = &'a f64>) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, &v) in values.enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

/// Adam's settings and step count.
pub struct Adam {
    /// Step size.
    pub rate: f64,
    /// Decay of the first moment.
    pub beta1: f64,
    /// Decay of the second moment.
    pub beta2: f64,
    /// Added to the second moment's root.
    pub eps: f64,
    steps: i32,
}

impl Adam {
    /// The usual defaults with step size `rate`.
    pub fn new(rate: f64) -> Adam {
        Adam {
            rate,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            steps: 0,
        }
    }
}

/// Adam's moment estimates for one parameter.
pub struct Moments<D: Dimension> {
    m: Array<f64, D>,
    v: Array<f64, D>,
}

impl<D: Dimension> Moments<D> {
    /// Zero moments of `param`'s shape.
    pub fn new(param: &Array<f64, D>) -> Moments<D> {
        Moments {
            m: Array::zeros(param.raw_dim()),
            v: Array::zeros(param.raw_dim()),
        }
    }

    /// One Adam update of `param` with gradient `grad` (the step count is `adam`'s).
    pub fn update(&mut self, adam: &Adam, param: &mut Array<f64, D>, grad: &Array<f64, D>) {
        let (b1, b2) = (adam.beta1, adam.beta2);
        let (c1, c2) = (1.0 - b1.powi(adam.steps), 1.0 - b2.powi(adam.steps));
        Zip::from(param)
            .and(&mut self.m)
            .and(&mut self.v)
            .and(grad)
            .for_each(|p, m, v, &g| {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *p -= adam.rate * (*m / c1) / ((*v / c2).sqrt() + adam.eps);
            });
    }
}

/// What one epoch ended with.
#[derive(Debug, Clone, Copy)]
pub struct Epoch {
    /// Cross-entropy on the training split (without the penalty).
    pub train_loss: f64,
    /// Cross-entropy on the test split.
    pub test_loss: f64,
    /// Accuracy on the training split.
    pub train_accuracy: f64,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
}

/// The training run's settings.
pub struct Config {
    /// Hidden units.
    pub hidden: usize,
    /// Passes over the training split.
    pub epochs: usize,
    /// Samples per gradient step.
    pub batch: usize,
    /// Adam's step size.
    pub rate: f64,
    /// The L2 penalty's weight.
    pub l2: f64,
    /// Seeds the split, the initial weights and the batches.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            hidden: 16,
            epochs: 200,
            batch: 20,
            rate: 0.01,
            l2: 1e-3,
            seed: 1,
        }
    }
}

/// Trains a network on the iris set; `after_epoch` sees each epoch's figures.
///
/// # Errors
/// A [`TapeError`] from `loss_grad` (none is expected: the shapes are fixed here).
pub fn train(
    config: &Config,
    mut after_epoch: impl FnMut(usize, &Epoch),
) -> Result<(Iris, Mlp, Vec<Epoch>), TapeError> {
    let mut rng = Rng::new(config.seed);
    let data = load_iris(&mut rng, 10);
    let mut model = Mlp::new(&mut rng, data.x_train.ncols(), config.hidden);
    let mut adam = Adam::new(config.rate);
    let mut moments = (
        Moments::new(&model.w1),
        Moments::new(&model.b1),
        Moments::new(&model.w2),
        Moments::new(&model.b2),
    );
    let mut order: Vec<usize> = (0..data.x_train.nrows()).collect();
    let mut history = Vec::with_capacity(config.epochs);
    for epoch in 0..config.epochs {
        rng.shuffle(&mut order);
        for batch in order.chunks(config.batch) {
            let x = data.x_train.select(Axis(0), batch);
            let y = data.y_train.select(Axis(0), batch);
            let g = model.grad(&x, &y, config.l2)?;
            adam.steps += 1;
            moments.0.update(&adam, &mut model.w1, &g.w1);
            moments.1.update(&adam, &mut model.b1, &g.b1);
            moments.2.update(&adam, &mut model.w2, &g.w2);
            moments.3.update(&adam, &mut model.b2, &g.b2);
        }
        let figures = Epoch {
            train_loss: model.loss(&data.x_train, &data.y_train, 0.0),
            test_loss: model.loss(&data.x_test, &data.y_test, 0.0),
            train_accuracy: model.accuracy(&data.x_train, &data.y_train),
            test_accuracy: model.accuracy(&data.x_test, &data.y_test),
        };
        after_epoch(epoch, &figures);
        history.push(figures);
    }
    Ok((data, model, history))
}

/// A small seeded generator (xorshift64*): enough to shuffle and to draw initial weights.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// Draws the training and test cross-entropy per epoch, on a log scale.
fn plot(history: &[Epoch], path: &Path) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    // A font compiled in, so the chart's text needs nothing from the system.
    plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
        .map_err(|_| "the embedded DejaVu Sans font did not load")?;
    let root = BitMapBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let losses = history.iter().flat_map(|e| [e.train_loss, e.test_loss]);
    let (lo, hi) = losses.fold((f64::INFINITY, 0.0_f64), |(lo, hi), l| {
        (lo.min(l), hi.max(l))
    });
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "iris, 4-16-3 MLP: cross-entropy per epoch",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0..history.len(), (lo * 0.8..hi * 1.25).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("cross-entropy")
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()?;
    for (name, color, pick) in [
        (
            "train",
            BLUE,
            (|e: &Epoch| e.train_loss) as fn(&Epoch) -> f64,
        ),
        ("test", RED, |e: &Epoch| e.test_loss),
    ] {
        chart
            .draw_series(LineSeries::new(
                history.iter().enumerate().map(|(i, e)| (i, pick(e))),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The configuration, with `--seed N`, `--epochs N` and `--l2 X` from the command line.
fn config_from_args() -> Result<Config, Box<dyn Error>> {
    let mut config = Config::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--seed" => config.seed = value.parse().map_err(|e| bad(&e))?,
            "--epochs" => config.epochs = value.parse().map_err(|e| bad(&e))?,
            "--l2" => config.l2 = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown option {flag} (try --seed, --epochs, --l2)").into()),
        }
    }
    if config.epochs == 0 {
        return Err("--epochs must be at least 1".into());
    }
    Ok(config)
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("train: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn Error>> {
    let config = config_from_args()?;
    let bar = ProgressBar::new(config.epochs as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40.cyan/blue} epoch {pos:>3}/{len} {msg}")?
            .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    let started = std::time::Instant::now();
    let (data, model, history) = train(&config, |_, e| {
        bar.set_message(format!(
            "loss {:.3} · train {:.1}% · test {:.1}%",
            e.train_loss,
            100.0 * e.train_accuracy,
            100.0 * e.test_accuracy
        ));
        bar.inc(1);
    })?;
    bar.finish();
    let last = history.last().ok_or("no epochs")?;
    println!(
        "trained in {:.2} s: {} gradient steps of loss_grad",
        started.elapsed().as_secs_f64(),
        config.epochs * data.x_train.nrows().div_ceil(config.batch)
    );
    let splits = [
        (
            "train:",
            last.train_accuracy,
            last.train_loss,
            data.x_train.nrows(),
        ),
        (
            "test: ",
            last.test_accuracy,
            last.test_loss,
            data.x_test.nrows(),
        ),
    ];
    for (split, accuracy, loss, flowers) in splits {
        let percent = 100.0 * accuracy;
        println!("{split} accuracy {percent:.1}%, cross-entropy {loss:.3} ({flowers} flowers)");
    }

    // The generated gradient against central differences, at the trained weights.
    let (x, y) = (&data.x_train, &data.y_train);
    let g = model.grad(x, y, config.l2)?;
    let numeric = tape::gradcheck::numeric_gradient(
        |w1| loss(w1, &model.b1, &model.w2, &model.b2, x, y, config.l2),
        &model.w1,
        1e-6,
    );
    let (error, _) = tape::gradcheck::max_relative_error(&g.w1, &numeric);
    println!("∂loss/∂w1 against central differences: max relative error {error:.1e}");

    let path = Path::new("target").join("train_loss.png");
    std::fs::create_dir_all("target")?;
    plot(&history, &path)?;
    println!("loss curves: {}", path.display());
    Ok(())
}
