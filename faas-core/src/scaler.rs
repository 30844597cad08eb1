//! The [`Scaler`] trait: a pure autoscaling policy, and the decision it returns.

use std::time::Duration;

/// What a policy sees of one function at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ScalingInput {
    /// Desired replicas now.
    pub current: u32,
    /// Ready replicas now.
    pub available: u32,
    /// `com.openfaas.scale.min` (default 1).
    pub min: u32,
    /// `com.openfaas.scale.max` (default 20).
    pub max: u32,
    /// Target load per replica (`com.openfaas.scale.target`): requests/s or in-flight requests.
    pub target: f64,
    /// Requests per second over the policy's window.
    pub rps: f64,
    /// Mean in-flight requests over the policy's window.
    pub inflight: f64,
    /// Time since the last invocation ended, if any.
    pub idle_for: Option<Duration>,
    /// Whether the function may scale to zero (`com.openfaas.scale.zero`).
    pub scale_to_zero: bool,
    /// How long it must be idle first (`com.openfaas.scale.zero-duration`).
    pub zero_after: Duration,
}

/// What a policy decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ScaleDecision {
    /// Keep the current replica count.
    Hold,
    /// Set the replica count to this.
    To(u32),
}

impl ScaleDecision {
    /// Set the replica count to `replicas`.
    pub fn to(replicas: u32) -> Self {
        ScaleDecision::To(replicas)
    }

    /// Keep the current replica count.
    pub fn hold() -> Self {
        ScaleDecision::Hold
    }
}

/// An autoscaling policy: a pure function of a snapshot. The loop that gathers snapshots and applies
/// decisions through [`Provider::scale`](crate::Provider::scale) is separate, so policies are tested
/// without a runtime.
pub trait Scaler: Send + Sync + 'static {
    /// The decision for one function.
    fn desired(&self, input: &ScalingInput) -> ScaleDecision;
}
