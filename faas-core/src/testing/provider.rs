//! The Provider conformance suite.
