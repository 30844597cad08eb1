//! NATS JetStream [`Queue`] for faas-rs asynchronous invocations: the distributed backend, for
//! several gateways and queue workers across machines.
//!
//! - one work-queue stream (`FAAS_ASYNC` by default, subjects `faas.async.<call-id>`) and one durable
//!   pull consumer shared by every worker, both created if missing; publishes wait for JetStream's
//!   ack (the call is stored) and are de-duplicated by call id (`Nats-Msg-Id`);
//! - explicit acks; a running call's ack deadline is extended (`AckKind::Progress`) so a slow
//!   function is not run twice; a worker that dies leaves its calls to be redelivered after the
//!   ack deadline; nacks use JetStream's delayed redelivery;
//! - bodies larger than [`NatsQueueConfig::inline_max_bytes`] (NATS's message limit is 1 MiB by
//!   default) go through a JetStream object store, so a 50 MiB async body works;
//! - cancellation and "started" markers live in a second stream (`<stream>_STATE`, one message per
//!   call, published with `Nats-Expected-Last-Subject-Sequence: 0`): the first delivery of a call
//!   atomically creates its `started` marker, a cancellation atomically creates `cancelled`, so a
//!   call either starts or is cancelled, never both. (A plain stream rather than a key-value bucket
//!   keeps this working on the NATS 2.9 servers Debian ships.)
//! - [`NatsInvocationStore`] keeps the invocation records in a third stream (`<stream>_RECORDS`), so
//!   that every gateway answers `GET /system/invocations/{call-id}` for calls any worker ran.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use faas_core::queue::{Queue, QueuedRequest};
//! use faas_queue_nats::{NatsQueue, NatsQueueConfig};
//!
//! let queue = NatsQueue::connect(NatsQueueConfig::new("nats://127.0.0.1:4222")).await?;
//! queue.publish(QueuedRequest::new("echo", "openfaas-fn").with_body("hello")).await?;
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::AckKind;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, object_store};
use async_trait::async_trait;
use bytes::Bytes;
use faas_core::ErrorKind;
use faas_core::queue::{Acknowledger, Delivery, Queue, QueuedRequest};
use futures::stream::{BoxStream, StreamExt};
use tokio::io::AsyncReadExt;

mod records;

pub use records::NatsInvocationStore;

/// The header naming the object that holds a call's body, when it is not inline.
const HEADER_BODY_OBJECT: &str = "Faas-Body-Object";
const MARK_STARTED: &str = "started";
const MARK_CANCELLED: &str = "cancelled";

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of the NATS queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server cannot be reached.
    #[error("cannot connect to nats at {url}")]
    Connect {
        /// The server's URL.
        url: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A JetStream operation failed.
    #[error("jetstream {operation} failed")]
    JetStream {
        /// What was attempted.
        operation: &'static str,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// A call id that cannot be a NATS subject token or key.
    #[error("call id {0:?} must contain only letters, digits, '-' and '_'")]
    InvalidCallId(String),
}

impl Error {
    fn js(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Error::JetStream {
            operation,
            source: source.into(),
        }
    }
}

impl From<Error> for faas_core::Error {
    fn from(err: Error) -> Self {
        let kind = match &err {
            Error::Connect { .. } => ErrorKind::Unavailable,
            Error::JetStream { .. } => ErrorKind::Backend,
            Error::InvalidCallId(_) => ErrorKind::InvalidInput,
        };
        faas_core::Error::new(kind, err.to_string()).with_source(err)
    }
}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Settings of a [`NatsQueue`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NatsQueueConfig {
    /// The server (`nats://127.0.0.1:4222`).
    pub url: String,
    /// The stream's name; the object store is `<stream>_BODIES`, the marker stream `<stream>_STATE`.
    pub stream: String,
    /// Subjects are `<prefix>.<call-id>`.
    pub subject_prefix: String,
    /// The durable consumer shared by the workers.
    pub consumer: String,
    /// A delivery neither acked nor in progress for this long is delivered again.
    pub ack_wait: Duration,
    /// Bodies larger than this go through the object store. Default 512 KiB.
    pub inline_max_bytes: usize,
    /// Messages a worker pulls at once. Default 32.
    pub fetch_batch: usize,
    /// How long started/cancelled markers are kept. Default 24 hours.
    pub marker_max_age: Duration,
}

impl NatsQueueConfig {
    /// Defaults for the server at `url`: stream `FAAS_ASYNC`, subjects `faas.async.*`, consumer
    /// `faas-queue-worker`, ack deadline 30 s.
    pub fn new(url: impl Into<String>) -> Self {
        NatsQueueConfig {
            url: url.into(),
            stream: "FAAS_ASYNC".to_owned(),
            subject_prefix: "faas.async".to_owned(),
            consumer: "faas-queue-worker".to_owned(),
            ack_wait: Duration::from_secs(30),
            inline_max_bytes: 512 * 1024,
            fetch_batch: 32,
            marker_max_age: Duration::from_secs(24 * 3600),
        }
    }

    /// Uses `name` for the stream, and derives the subjects and the consumer from it (isolates
    /// several platforms, or tests, on one server).
    #[must_use]
    pub fn with_stream(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.subject_prefix = format!("faas.async.{}", name.to_lowercase());
        self.consumer = format!("{}-worker", name.to_lowercase());
        self.stream = name;
        self
    }

    /// Sets the ack deadline.
    #[must_use]
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Sets the largest body sent inline.
    #[must_use]
    pub fn with_inline_max_bytes(mut self, bytes: usize) -> Self {
        self.inline_max_bytes = bytes;
        self
    }

    /// Sets how many messages a worker pulls at once.
    #[must_use]
    pub fn with_fetch_batch(mut self, batch: usize) -> Self {
        self.fetch_batch = batch.max(1);
        self
    }
}

struct Inner {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    bodies: object_store::ObjectStore,
    state: jetstream::stream::Stream,
    config: NatsQueueConfig,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsQueue")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The JetStream queue. Cheap to clone; see the [crate docs](crate).
#[derive(Debug, Clone)]
pub struct NatsQueue {
    inner: Arc<Inner>,
}

fn check_call_id(call_id: &str) -> Result<()> {
    let valid = !call_id.is_empty()
        && call_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidCallId(call_id.to_owned()))
    }
}

impl NatsQueue {
    /// Connects to `config.url` and creates the stream, object store and bucket if missing.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server cannot be reached, [`Error::JetStream`] when JetStream
    /// is not enabled or refuses the configuration.
    pub async fn connect(config: NatsQueueConfig) -> Result<Self> {
        let client = async_nats::ConnectOptions::new()
            .name("faas-queue-nats")
            .connect(config.url.as_str())
            .await
            .map_err(|e| Error::Connect {
                url: config.url.clone(),
                source: e.into(),
            })?;
        Self::with_client(client, config).await
    }

    /// Uses an existing client; creates the stream, object store and bucket if missing.
    ///
    /// # Errors
    /// [`Error::JetStream`] when JetStream is not enabled or refuses the configuration.
    pub async fn with_client(client: async_nats::Client, config: NatsQueueConfig) -> Result<Self> {
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(jetstream::stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.*", config.subject_prefix)],
                retention: RetentionPolicy::WorkQueue,
                storage: StorageType::File,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::js("stream creation", e))?;
        let bodies_bucket = format!("{}_BODIES", config.stream);
        let bodies = match js.get_object_store(&bodies_bucket).await {
            Ok(store) => store,
            Err(_) => js
                .create_object_store(object_store::Config {
                    bucket: bodies_bucket,
                    description: Some("bodies of queued faas-rs calls".to_owned()),
                    storage: StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::js("object store creation", e))?,
        };
        let state = js
            .get_or_create_stream(jetstream::stream::Config {
                name: format!("{}_STATE", config.stream),
                subjects: vec![format!("{}.state.*", config.subject_prefix)],
                max_messages_per_subject: 1,
                max_age: config.marker_max_age,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::js("marker stream creation", e))?;
        Ok(NatsQueue {
            inner: Arc::new(Inner {
                js,
                stream,
                bodies,
                state,
                config,
            }),
        })
    }

    /// Deletes the stream, its consumer, the object store and the marker stream (tests, uninstall).
    ///
    /// # Errors
    /// [`Error::JetStream`] when a deletion fails.
    pub async fn destroy(&self) -> Result<()> {
        let inner = &self.inner;
        let stream = inner.config.stream.as_str();
        inner
            .js
            .delete_stream(stream)
            .await
            .map_err(|e| Error::js("stream deletion", e))?;
        inner
            .js
            .delete_object_store(format!("{stream}_BODIES"))
            .await
            .map_err(|e| Error::js("object store deletion", e))?;
        inner
            .js
            .delete_stream(format!("{stream}_STATE"))
            .await
            .map_err(|e| Error::js("marker stream deletion", e))?;
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &NatsQueueConfig {
        &self.inner.config
    }
}

impl Inner {
    fn subject(&self, call_id: &str) -> String {
        format!("{}.{call_id}", self.config.subject_prefix)
    }

    /// Creates the call's marker unless it has one; false when it had one.
    async fn mark(&self, call_id: &str, mark: &'static str) -> Result<bool> {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
        let subject = format!("{}.state.{call_id}", self.config.subject_prefix);
        let sent = self
            .js
            .publish_with_headers(subject, headers, Bytes::from_static(mark.as_bytes()))
            .await
            .map_err(|e| Error::js("marker publish", e))?
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == PublishErrorKind::WrongLastSequence => Ok(false),
            Err(err) => Err(Error::js("marker publish", err)),
        }
    }

    /// The call's marker, if it has one.
    async fn marker(&self, call_id: &str) -> Result<Option<Bytes>> {
        let subject = format!("{}.state.{call_id}", self.config.subject_prefix);
        match self.state.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => Ok(Some(message.payload)),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(Error::js("marker lookup", err)),
        }
    }

    async fn publish(&self, request: QueuedRequest) -> Result<()> {
        check_call_id(&request.call_id)?;
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            request.call_id.as_str(),
        );
        let payload = if request.body.len() > self.config.inline_max_bytes {
            let mut body: &[u8] = &request.body;
            self.bodies
                .put(request.call_id.as_str(), &mut body)
                .await
                .map_err(|e| Error::js("body upload", e))?;
            headers.insert(HEADER_BODY_OBJECT, request.call_id.as_str());
            let mut without_body = request.clone();
            without_body.body = Bytes::new();
            without_body.to_bytes()
        } else {
            request.to_bytes()
        };
        let ack = self
            .js
            .publish_with_headers(self.subject(&request.call_id), headers, payload)
            .await
            .map_err(|e| Error::js("publish", e))?
            .await
            .map_err(|e| Error::js("publish ack", e))?;
        if ack.duplicate {
            tracing::debug!(
                call_id = request.call_id,
                "duplicate publish ignored by jetstream"
            );
        }
        Ok(())
    }

    /// Turns a message into a delivery; `None` for a cancelled call (acked and dropped here).
    async fn delivery(
        self: &Arc<Self>,
        message: jetstream::Message,
    ) -> Option<faas_core::Result<Delivery>> {
        let attempt = message
            .info()
            .map(|i| u32::try_from(i.delivered).unwrap_or(u32::MAX))
            .unwrap_or(1);
        let mut request = match QueuedRequest::from_bytes(message.payload.clone()) {
            Ok(request) => request,
            Err(err) => {
                tracing::error!(error = %err, "dropping an undecodable queued call");
                let _ = message.ack_with(AckKind::Term).await;
                return Some(Err(err));
            }
        };
        let object = message
            .headers
            .as_ref()
            .and_then(|h| h.get(HEADER_BODY_OBJECT))
            .map(|v| v.as_str().to_owned());
        match self.mark(&request.call_id, MARK_STARTED).await {
            Ok(true) => {}
            Ok(false) => {
                let cancelled = matches!(
                    self.marker(&request.call_id).await,
                    Ok(Some(value)) if value == MARK_CANCELLED.as_bytes()
                );
                if cancelled {
                    tracing::debug!(call_id = request.call_id, "skipping a cancelled call");
                    let _ = message.double_ack().await;
                    if let Some(object) = &object {
                        let _ = self.bodies.delete(object).await;
                    }
                    return None;
                }
            }
            Err(err) => {
                tracing::warn!(call_id = request.call_id, error = %err, "cannot mark a call started")
            }
        }
        if let Some(object) = &object {
            match self.read_body(object).await {
                Ok(body) => request.body = body,
                Err(err) => {
                    // Not lost: the message stays, and is delivered again after the deadline.
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                    return Some(Err(err.into()));
                }
            }
        }
        let acker = NatsAcker {
            inner: self.clone(),
            message: Arc::new(message),
            object,
            done: AtomicBool::new(false),
        };
        Some(Ok(Delivery::new(request, attempt.max(1), acker)))
    }

    async fn read_body(&self, object: &str) -> Result<Bytes> {
        let mut reader = self
            .bodies
            .get(object)
            .await
            .map_err(|e| Error::js("body download", e))?;
        let mut body = Vec::new();
        reader
            .read_to_end(&mut body)
            .await
            .map_err(|e| Error::js("body download", e))?;
        Ok(Bytes::from(body))
    }
}

struct NatsAcker {
    inner: Arc<Inner>,
    message: Arc<jetstream::Message>,
    object: Option<String>,
    done: AtomicBool,
}

impl std::fmt::Debug for NatsAcker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAcker")
            .field("subject", &self.message.subject)
            .finish_non_exhaustive()
    }
}

fn ack_error(operation: &'static str, err: BoxError) -> faas_core::Error {
    Error::js(operation, err).into()
}

#[async_trait]
impl Acknowledger for NatsAcker {
    async fn ack(&self) -> faas_core::Result<()> {
        // Waits for the server's confirmation: after this, the call is never delivered again.
        self.message
            .double_ack()
            .await
            .map_err(|e| ack_error("ack", e))?;
        self.done.store(true, Ordering::Release);
        if let Some(object) = &self.object
            && let Err(err) = self.inner.bodies.delete(object).await
        {
            tracing::warn!(object, error = %err, "cannot delete a queued call's body");
        }
        Ok(())
    }

    async fn nack(&self, delay: Duration) -> faas_core::Result<()> {
        self.done.store(true, Ordering::Release);
        let delay = (!delay.is_zero()).then_some(delay);
        self.message
            .ack_with(AckKind::Nak(delay))
            .await
            .map_err(|e| ack_error("nak", e))
    }

    async fn in_progress(&self) -> faas_core::Result<()> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|e| ack_error("progress", e))
    }
}

impl Drop for NatsAcker {
    fn drop(&mut self) {
        if self.done.load(Ordering::Acquire) {
            return;
        }
        // Abandoned: hand it back at once rather than after the ack deadline.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let message = self.message.clone();
            runtime.spawn(async move {
                let _ = message.ack_with(AckKind::Nak(None)).await;
            });
        }
    }
}

#[async_trait]
impl Queue for NatsQueue {
    async fn publish(&self, request: QueuedRequest) -> faas_core::Result<()> {
        Ok(self.inner.publish(request).await?)
    }

    async fn consume(&self) -> faas_core::Result<BoxStream<'static, faas_core::Result<Delivery>>> {
        let inner = self.inner.clone();
        let config = &inner.config;
        let consumer: jetstream::consumer::PullConsumer = inner
            .stream
            .get_or_create_consumer(
                &config.consumer,
                pull::Config {
                    durable_name: Some(config.consumer.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    max_deliver: -1,
                    max_ack_pending: 20_000,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| Error::js("consumer creation", e))?;
        let messages = consumer
            .stream()
            .max_messages_per_batch(config.fetch_batch)
            .messages()
            .await
            .map_err(|e| Error::js("pull", e))?;
        Ok(messages
            .filter_map(move |message| {
                let inner = inner.clone();
                async move {
                    match message {
                        Ok(message) => inner.delivery(message).await,
                        Err(err) => Some(Err(Error::js("pull", err).into())),
                    }
                }
            })
            .boxed())
    }

    async fn cancel(&self, call_id: &str) -> faas_core::Result<bool> {
        if check_call_id(call_id).is_err() {
            return Ok(false);
        }
        let inner = &self.inner;
        let message = match inner
            .stream
            .get_last_raw_message_by_subject(&inner.subject(call_id))
            .await
        {
            Ok(message) => message,
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(false),
            Err(err) => return Err(Error::js("message lookup", err).into()),
        };
        if !inner.mark(call_id, MARK_CANCELLED).await? {
            return Ok(false);
        }
        // Workers skip it thanks to the marker; removing it now saves them the trouble.
        if let Err(err) = inner.stream.delete_message(message.sequence).await {
            tracing::debug!(call_id, error = %err, "cannot delete a cancelled call's message");
        }
        if message.headers.get(HEADER_BODY_OBJECT).is_some() {
            let _ = inner.bodies.delete(call_id).await;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_must_be_subject_tokens() {
        assert!(check_call_id("0f8fad5b-d9cb-469f-a165-70867728950e").is_ok());
        for bad in ["", "a.b", "a*", "a>", "a b"] {
            assert!(check_call_id(bad).is_err(), "{bad}");
        }
        let err: faas_core::Error = Error::InvalidCallId("a.b".into()).into();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn stream_names_isolate_subjects_and_consumers() {
        let config = NatsQueueConfig::new("nats://127.0.0.1:4222").with_stream("TEST_1");
        assert_eq!(config.subject_prefix, "faas.async.test_1");
        assert_eq!(config.consumer, "test_1-worker");
    }
}
