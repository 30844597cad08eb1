//! The core of faas-rs: the OpenFaaS-compatible [model], the [`Provider`], [`Queue`] and [`Scaler`]
//! traits, the [`Error`] type and its one mapping to HTTP statuses, [validation](validate), and the
//! conformance suites every implementation runs against itself ([`testing`]).
//!
//! Backends (local processes, Docker Swarm, Kubernetes, NATS) live in their own crates and depend on
//! this one, never the reverse.
//!
//! ```
//! use faas_core::model::FunctionDeployment;
//! use faas_core::validate::validate_deployment;
//!
//! let deployment = FunctionDeployment::new("echo", "alpine").with_env_process("cat");
//! validate_deployment(&deployment).unwrap();
//! ```

mod error;
pub mod gateway;
pub mod invoke;
pub mod model;
pub mod provider;
pub mod queue;
pub mod runtime;
pub mod scaler;
pub mod testing;
pub mod validate;

pub use error::{BoxError, Error, ErrorKind, Result};
pub use gateway::Gateway;
pub use invoke::Invoker;
pub use provider::Provider;
pub use queue::{Delivery, Queue, QueuedRequest};
pub use scaler::{ScaleDecision, Scaler, ScalingInput};
