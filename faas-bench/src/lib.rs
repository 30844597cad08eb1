//! Benchmark runner of faas-rs
