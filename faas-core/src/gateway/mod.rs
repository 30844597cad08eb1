//! The OpenFaaS-compatible gateway: a composable tower stack.
