//! Procedural macros of faas-sdk
