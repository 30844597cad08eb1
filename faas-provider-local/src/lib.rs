//! Runs functions as local processes: the embedded default provider of faas-rs
