//! Asynchronous invocation: the [`Queue`] trait and its backends, invocation [records], and the
//! [worker] that runs queued calls.
//!
//! - [`MemoryQueue`]: in-memory, for tests and embedding where losing calls on exit is acceptable;
//! - [`EmbeddedQueue`]: a durable append-only log in a directory with group commit, the default of
//!   `faas up` (survives `kill -9`);
//! - `faas-queue-nats`: NATS JetStream, for several gateways and workers across machines.
//!
//! All of them pass the conformance suite in [`testing::queue`](crate::testing::queue).
//!
//! ```
//! # async fn demo() -> faas_core::Result<()> {
//! use faas_core::queue::{MemoryQueue, Queue, QueuedRequest};
//! use futures::StreamExt;
//!
//! let queue = MemoryQueue::new();
//! let request = QueuedRequest::new("echo", "openfaas-fn").with_body("hello");
//! let call_id = request.call_id.clone();
//! queue.publish(request).await?;
//! let mut deliveries = queue.consume().await?;
//! let delivery = deliveries.next().await.unwrap()?;
//! assert_eq!(delivery.request.call_id, call_id);
//! delivery.ack().await?;
//! # Ok(()) }
//! ```

mod codec;
mod embedded;
mod memory;
pub mod records;
mod sched;
mod tls;
mod wal;
pub mod worker;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::Result;

pub use embedded::{DEFAULT_MAX_PENDING, EmbeddedQueue, EmbeddedQueueConfig};
pub use memory::MemoryQueue;

/// The header that carries a call's id (answered with 202, sent to the callback).
pub const HEADER_CALL_ID: &str = "X-Call-Id";
/// The header a client sets to receive the result of an asynchronous call.
pub const HEADER_CALLBACK_URL: &str = "X-Callback-Url";
/// The header of a callback that carries the function's status code.
pub const HEADER_FUNCTION_STATUS: &str = "X-Function-Status";
/// The header of a callback that names the function.
pub const HEADER_FUNCTION_NAME: &str = "X-Function-Name";
/// The header of a callback (and of every function response) with the duration in seconds.
pub const HEADER_DURATION_SECONDS: &str = "X-Duration-Seconds";
/// The header with the time the call was queued (Unix nanoseconds, as OpenFaaS's `X-Start-Time`).
pub const HEADER_START_TIME: &str = "X-Start-Time";

/// A new call id: a random (v4) UUID.
pub fn new_call_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

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

impl QueuedRequest {
    /// A `POST` of an empty body to `function` in `namespace`, with a new call id, queued now.
    pub fn new(function: impl Into<String>, namespace: impl Into<String>) -> Self {
        QueuedRequest {
            call_id: new_call_id(),
            function: function.into(),
            namespace: namespace.into(),
            method: "POST".to_owned(),
            path: String::new(),
            query: None,
            headers: Vec::new(),
            body: Bytes::new(),
            callback_url: None,
            queued_at: Utc::now(),
        }
    }

    /// Sets the call id.
    #[must_use]
    pub fn with_call_id(mut self, call_id: impl Into<String>) -> Self {
        self.call_id = call_id.into();
        self
    }

    /// Sets the HTTP method.
    #[must_use]
    pub fn with_method(mut self, method: impl Into<String>) -> Self {
        self.method = method.into();
        self
    }

    /// Sets the path suffix (empty or starting with `/`).
    #[must_use]
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Sets the query string (without `?`).
    #[must_use]
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the callback URL.
    #[must_use]
    pub fn with_callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// Encodes the request in the compact binary form the durable backends store (the body is
    /// copied once, not escaped).
    pub fn to_bytes(&self) -> Bytes {
        codec::encode(self).into()
    }

    /// Decodes a request encoded by [`QueuedRequest::to_bytes`]; the body shares `bytes`.
    ///
    /// # Errors
    /// [`ErrorKind::Backend`](crate::ErrorKind::Backend) when the bytes are not an encoded request.
    pub fn from_bytes(bytes: Bytes) -> Result<Self> {
        codec::decode(bytes)
    }

    /// The encoded size without the body.
    pub fn encoded_len_without_body(&self) -> usize {
        codec::encoded_len(self) - self.body.len()
    }
}

/// Acknowledgement of one delivery, implemented by each backend.
///
/// A backend should treat an acknowledger dropped without `ack` or `nack` as abandoned: the call
/// is delivered again (at once, or when its ack deadline passes).
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
        Delivery {
            request,
            attempt,
            acker: Box::new(acker),
        }
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
///
/// Delivery is at least once: a call is delivered again when its delivery is nacked, dropped, or
/// neither acked nor marked in progress within the backend's ack deadline (a crashed worker).
/// Several consumers of one queue compete: each call goes to one of them at a time.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Stores the call durably; returns only once a crash can no longer lose it.
    async fn publish(&self, request: QueuedRequest) -> Result<()>;

    /// Deliveries for a worker. Each is delivered again if it is neither acked nor in progress
    /// within the backend's ack deadline.
    async fn consume(&self) -> Result<BoxStream<'static, Result<Delivery>>>;

    /// Removes a call that has not started; `Ok(false)` if it already started or is unknown.
    async fn cancel(&self, call_id: &str) -> Result<bool>;

    /// The largest body this backend accepts, if it has a limit of its own.
    fn max_body_bytes(&self) -> Option<usize> {
        None
    }
}

#[async_trait]
impl<Q: Queue + ?Sized> Queue for std::sync::Arc<Q> {
    async fn publish(&self, request: QueuedRequest) -> Result<()> {
        (**self).publish(request).await
    }

    async fn consume(&self) -> Result<BoxStream<'static, Result<Delivery>>> {
        (**self).consume().await
    }

    async fn cancel(&self, call_id: &str) -> Result<bool> {
        (**self).cancel(call_id).await
    }

    fn max_body_bytes(&self) -> Option<usize> {
        (**self).max_body_bytes()
    }
}
