//! NATS JetStream queue backend for faas-rs async invocations
