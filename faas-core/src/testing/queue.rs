//! The Queue conformance suite.
