//! The [`Queue`] trait: durable storage of asynchronous invocations.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::Result;

/// An asynchronous invocation as accepted by `POST /async-function/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueuedRequest {
    /// The call's id, returned to the client as `X-Call-Id`.
    pub call_id: String,
    /// The function.
    pub function: String,
    /// Its namespace.
    pub namespace: String,
    /// HTTP method.
    pub method: String,
    /// Path suffix after `/async-function/{name}` (empty or starting with `/`).
    pub path: String,
    /// Query string without `?`.
    pub query: Option<String>,
    /// Request headers (values that are not UTF-8 are dropped).
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Bytes,
    /// Where to POST the result.
    pub callback_url: Option<String>,
    /// When the gateway accepted the call.
    pub queued_at: DateTime<Utc>,
}

/// Acknowledgement of one delivery, implemented by each backend.
#[async_trait]
pub trait Acknowledger: Send + Sync + 'static {
    /// The call is done (its outcome recorded): never deliver it again.
    async fn ack(&self) -> Result<()>;
    /// Deliver the call again after `delay`.
    async fn nack(&self, delay: Duration) -> Result<()>;
    /// The call is still running: extend its ack deadline.
    async fn in_progress(&self) -> Result<()>;
}

/// One delivery of a queued call to a worker.
#[derive(Debug)]
#[non_exhaustive]
pub struct Delivery {
    /// The call.
    pub request: QueuedRequest,
    /// 1 on first delivery, then counts redeliveries.
    pub attempt: u32,
    acker: Box<dyn Acknowledger>,
}

impl std::fmt::Debug for dyn Acknowledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Acknowledger")
    }
}

impl Delivery {
    /// A delivery of `request`, acknowledged through `acker`.
    pub fn new(request: QueuedRequest, attempt: u32, acker: impl Acknowledger) -> Self {
        Delivery { request, attempt, acker: Box::new(acker) }
    }

    /// See [`Acknowledger::ack`].
    ///
    /// # Errors
    /// The backend could not record the ack.
    pub async fn ack(&self) -> Result<()> {
        self.acker.ack().await
    }

    /// See [`Acknowledger::nack`].
    ///
    /// # Errors
    /// The backend could not record the nack.
    pub async fn nack(&self, delay: Duration) -> Result<()> {
        self.acker.nack(delay).await
    }

    /// See [`Acknowledger::in_progress`].
    ///
    /// # Errors
    /// The backend could not extend the deadline.
    pub async fn in_progress(&self) -> Result<()> {
        self.acker.in_progress().await
    }
}

/// A durable queue of asynchronous calls (embedded file queue, NATS JetStream, in-memory for tests).
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Stores the call durably; returns only once a crash can no longer lose it.
    async fn publish(&self, request: QueuedRequest) -> Result<()>;

    /// Deliveries for a worker. Each is delivered again if it is neither acked nor in progress
    /// within the backend's ack deadline.
    async fn consume(&self) -> Result<BoxStream<'static, Result<Delivery>>>;

    /// Removes a call that has not started; `Ok(false)` if it already started or is unknown.
    async fn cancel(&self, call_id: &str) -> Result<bool>;
}
