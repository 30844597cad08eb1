//! Model, traits, errors and the gateway of faas-rs
