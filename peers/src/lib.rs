//! Benchmarks only: see `benches/candle.rs`.
