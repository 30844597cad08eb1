//! [`NatsInvocationStore`]: invocation records in a JetStream stream, shared by every gateway and
//! worker of a platform.
//!
//! One subject per call (`<prefix>.rec.<call-id>`, one message kept per subject, the newest record),
//! records expire after the retention (the stream's `max_age`). `get` reads the last message of the
//! call's subject; `list` reads the newest record of every call with an ordered consumer and filters
//! them, so it costs a scan of the retained records: fine for thousands, not for millions.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{LastRawMessageErrorKind, StorageType};
use async_nats::jetstream::{self};
use async_trait::async_trait;
use bytes::Bytes;
use faas_core::queue::records::{
    Durability, InvocationRecord, InvocationStatus, InvocationStore, ListQuery,
};
use futures::StreamExt;

use crate::{Error, NatsQueue, Result};

/// The most records a listing scans.
const MAX_SCAN: u64 = 200_000;

/// Invocation records in JetStream. Cheap to clone.
#[derive(Clone)]
pub struct NatsInvocationStore {
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    prefix: String,
}

impl std::fmt::Debug for NatsInvocationStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsInvocationStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl NatsInvocationStore {
    /// The records of `queue`'s platform (stream `<queue stream>_RECORDS`), kept `retention`;
    /// created if missing.
    ///
    /// # Errors
    /// [`Error::JetStream`] when the stream cannot be created.
    pub async fn open(queue: &NatsQueue, retention: Duration) -> Result<Self> {
        let inner = &queue.inner;
        let name = format!("{}_RECORDS", inner.config.stream);
        let prefix = format!("{}.rec", inner.config.subject_prefix);
        let stream = inner
            .js
            .get_or_create_stream(jetstream::stream::Config {
                name,
                subjects: vec![format!("{prefix}.*")],
                max_messages_per_subject: 1,
                max_age: retention,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::js("records stream creation", e))?;
        Ok(NatsInvocationStore {
            js: inner.js.clone(),
            stream,
            prefix,
        })
    }

    /// Deletes the records stream (tests, uninstall).
    ///
    /// # Errors
    /// [`Error::JetStream`] when the deletion fails.
    pub async fn destroy(&self) -> Result<()> {
        let name = self.stream.cached_info().config.name.clone();
        self.js
            .delete_stream(&name)
            .await
            .map_err(|e| Error::js("records stream deletion", e))?;
        Ok(())
    }

    fn subject(&self, call_id: &str) -> String {
        format!("{}.{call_id}", self.prefix)
    }

    async fn put_record(&self, record: &InvocationRecord, durability: Durability) -> Result<()> {
        crate::check_call_id(&record.call_id)?;
        let payload = serde_json::to_vec(record).map_err(|e| Error::js("record encoding", e))?;
        let mut headers = HeaderMap::new();
        let first = record.status == InvocationStatus::Queued && record.attempts == 0;
        if first {
            // A new call's record never replaces one a worker already wrote.
            headers.insert(async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "0");
        }
        let ack = self
            .js
            .publish_with_headers(self.subject(&record.call_id), headers, Bytes::from(payload))
            .await
            .map_err(|e| Error::js("record publish", e))?;
        if durability == Durability::Lazy && !first {
            return Ok(());
        }
        match ack.await {
            Ok(_) => Ok(()),
            Err(err) if first && err.kind() == PublishErrorKind::WrongLastSequence => Ok(()),
            Err(err) => Err(Error::js("record publish ack", err)),
        }
    }

    async fn get_record(&self, call_id: &str) -> Result<Option<InvocationRecord>> {
        if crate::check_call_id(call_id).is_err() {
            return Ok(None);
        }
        match self
            .stream
            .get_last_raw_message_by_subject(&self.subject(call_id))
            .await
        {
            Ok(message) => serde_json::from_slice(&message.payload)
                .map(Some)
                .map_err(|e| Error::js("record decoding", e)),
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(Error::js("record lookup", err)),
        }
    }

    async fn list_records(&self, query: &ListQuery) -> Result<Vec<InvocationRecord>> {
        let mut stream = self.stream.clone();
        let total = stream
            .info()
            .await
            .map_err(|e| Error::js("records stream info", e))?
            .state
            .messages;
        if total == 0 {
            return Ok(Vec::new());
        }
        let consumer = stream
            .create_consumer(pull::OrderedConfig {
                filter_subject: format!("{}.*", self.prefix),
                deliver_policy: DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::js("records scan", e))?;
        let mut messages = consumer
            .messages()
            .await
            .map_err(|e| Error::js("records scan", e))?;
        let mut matching = Vec::new();
        let mut scanned = 0u64;
        while scanned < total.min(MAX_SCAN) {
            let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
            let Ok(Some(message)) = next else { break };
            let message = message.map_err(|e| Error::js("records scan", e))?;
            scanned += 1;
            let pending = message.info().map(|i| i.pending).unwrap_or(0);
            if let Ok(record) = serde_json::from_slice::<InvocationRecord>(&message.payload) {
                let keep = query
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| *ns == record.namespace)
                    && query
                        .function
                        .as_ref()
                        .is_none_or(|f| *f == record.function)
                    && query.status.is_none_or(|s| s == record.status);
                if keep {
                    matching.push(record);
                }
            }
            if pending == 0 {
                break;
            }
        }
        matching.sort_by_key(|r| std::cmp::Reverse(r.queued_at));
        matching.truncate(if query.limit == 0 { 100 } else { query.limit });
        Ok(matching)
    }
}

#[async_trait]
impl InvocationStore for NatsInvocationStore {
    async fn put(&self, record: InvocationRecord, durability: Durability) -> faas_core::Result<()> {
        Ok(self.put_record(&record, durability).await?)
    }

    async fn get(&self, call_id: &str) -> faas_core::Result<Option<InvocationRecord>> {
        Ok(self.get_record(call_id).await?)
    }

    async fn list(&self, query: ListQuery) -> faas_core::Result<Vec<InvocationRecord>> {
        Ok(self.list_records(&query).await?)
    }
}
