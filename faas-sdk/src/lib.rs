//! Write self-contained faas-rs functions in Rust
