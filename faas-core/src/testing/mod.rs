//! Conformance suites that every implementation of a faas-core trait runs against itself.
//!
//! A provider crate calls [`provider::conformance`] from one of its tests with a fresh instance of
//! itself; a queue backend calls [`queue::conformance`].

pub mod provider;
pub mod queue;
