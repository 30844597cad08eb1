//! Invocation records: the status and result of every asynchronous call, retrievable by its
//! `X-Call-Id` (`GET /system/invocations/{call-id}`) and listable per function.
//!
//! [`MemoryInvocationStore`] keeps them in memory; [`EmbeddedInvocationStore`] adds a durable log
//! beside the embedded queue, so that records survive restarts. Both keep records for a
//! [retention](RecordsConfig::retention), at most [`RecordsConfig::max_records`] of them and
//! [`RecordsConfig::max_result_bytes`] of result bodies.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::QueuedRequest;
use super::wal::Wal;
use crate::{Error, ErrorKind, Result};

/// Where an asynchronous call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvocationStatus {
    /// Accepted, waiting for a worker (or for its next retry).
    Queued,
    /// A worker is running it.
    Running,
    /// The function answered with a status that is not retried as a failure (below 400).
    Succeeded,
    /// The last attempt failed and no retry is left.
    Failed,
    /// Cancelled before it started (`DELETE /async-function/{call-id}`).
    Cancelled,
}

impl InvocationStatus {
    /// Whether the call is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    /// The lowercase name (`"queued"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for InvocationStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            _ => {
                return Err(Error::invalid(
                    "status",
                    format!(
                        "unknown status {s:?}: expected queued, running, succeeded, failed or cancelled"
                    ),
                ));
            }
        })
    }
}

/// The function's response, as kept in a record (its body bounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(into = "ResultJson", try_from = "ResultJson")]
#[non_exhaustive]
pub struct InvocationResult {
    /// The response's `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body, cut at the configured bound.
    pub body: Bytes,
    /// The full size of the body.
    pub size: u64,
    /// Whether `body` was cut.
    pub truncated: bool,
}

impl InvocationResult {
    /// A result keeping at most `max_bytes` of `body`.
    pub fn new(content_type: Option<String>, body: Bytes, max_bytes: usize) -> Self {
        let size = body.len() as u64;
        let truncated = body.len() > max_bytes;
        let body = if truncated {
            body.slice(..max_bytes)
        } else {
            body
        };
        InvocationResult {
            content_type,
            body,
            size,
            truncated,
        }
    }
}

/// JSON form of a result: the body as text when it is UTF-8, else base64.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResultJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    body: String,
    encoding: String,
    size: u64,
    truncated: bool,
}

impl From<InvocationResult> for ResultJson {
    fn from(r: InvocationResult) -> Self {
        let (body, encoding) = match std::str::from_utf8(&r.body) {
            Ok(text) => (text.to_owned(), "utf8"),
            Err(_) => (STANDARD.encode(&r.body), "base64"),
        };
        ResultJson {
            content_type: r.content_type,
            body,
            encoding: encoding.to_owned(),
            size: r.size,
            truncated: r.truncated,
        }
    }
}

impl TryFrom<ResultJson> for InvocationResult {
    type Error = String;

    fn try_from(j: ResultJson) -> std::result::Result<Self, String> {
        let body = match j.encoding.as_str() {
            "utf8" => Bytes::from(j.body),
            "base64" => Bytes::from(STANDARD.decode(j.body).map_err(|e| e.to_string())?),
            other => return Err(format!("unknown body encoding {other:?}")),
        };
        Ok(InvocationResult {
            content_type: j.content_type,
            body,
            size: j.size,
            truncated: j.truncated,
        })
    }
}

/// The record of one asynchronous call (`GET /system/invocations/{call-id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct InvocationRecord {
    /// The call's id (`X-Call-Id`).
    pub call_id: String,
    /// The function.
    pub function: String,
    /// Its namespace.
    pub namespace: String,
    /// Where the call is.
    pub status: InvocationStatus,
    /// Attempts started so far.
    pub attempts: u32,
    /// When the gateway accepted it.
    pub queued_at: DateTime<Utc>,
    /// When the first attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When this record last changed.
    pub updated_at: DateTime<Utc>,
    /// The status code of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// Why the last attempt failed, when it failed without a response (or the platform's error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long the last attempt took, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    /// The callback URL, if the client gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// The status the callback receiver answered with (or none if it could not be reached).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_status: Option<u16>,
    /// The function's response of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<InvocationResult>,
}

impl InvocationRecord {
    /// The `queued` record of a call just accepted.
    pub fn queued(request: &QueuedRequest) -> Self {
        InvocationRecord {
            call_id: request.call_id.clone(),
            function: request.function.clone(),
            namespace: request.namespace.clone(),
            status: InvocationStatus::Queued,
            attempts: 0,
            queued_at: request.queued_at,
            started_at: None,
            finished_at: None,
            updated_at: Utc::now(),
            status_code: None,
            error: None,
            duration_seconds: None,
            callback_url: request.callback_url.clone(),
            callback_status: None,
            result: None,
        }
    }
}

/// Which records [`InvocationStore::list`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListQuery {
    /// Only this function's calls.
    pub function: Option<String>,
    /// Only this namespace's calls.
    pub namespace: Option<String>,
    /// Only calls in this status.
    pub status: Option<InvocationStatus>,
    /// At most this many (newest first); 0 means the store's default of 100.
    pub limit: usize,
}

impl ListQuery {
    /// The calls of `function` in `namespace`, newest first.
    pub fn function(function: impl Into<String>, namespace: impl Into<String>) -> Self {
        ListQuery {
            function: Some(function.into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        }
    }

    /// Sets the limit.
    #[must_use]
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Sets the status filter.
    #[must_use]
    pub fn with_status(mut self, status: InvocationStatus) -> Self {
        self.status = Some(status);
        self
    }
}

/// Whether [`InvocationStore::put`] waits until the record is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Return once the record survives a crash (the worker's final record, before its ack).
    Durable,
    /// Return at once; the record reaches the disk with the next batch.
    Lazy,
}

/// Where invocation records are kept.
#[async_trait]
pub trait InvocationStore: Send + Sync + 'static {
    /// Stores a record, replacing the call's previous one. A `queued` record of a call not yet
    /// attempted never replaces an existing record (the worker may have picked the call up already).
    async fn put(&self, record: InvocationRecord, durability: Durability) -> Result<()>;

    /// The record of a call, if it is known and retained.
    async fn get(&self, call_id: &str) -> Result<Option<InvocationRecord>>;

    /// Records matching `query`, newest (by queue time) first.
    async fn list(&self, query: ListQuery) -> Result<Vec<InvocationRecord>>;
}

#[async_trait]
impl<S: InvocationStore + ?Sized> InvocationStore for Arc<S> {
    async fn put(&self, record: InvocationRecord, durability: Durability) -> Result<()> {
        (**self).put(record, durability).await
    }

    async fn get(&self, call_id: &str) -> Result<Option<InvocationRecord>> {
        (**self).get(call_id).await
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<InvocationRecord>> {
        (**self).list(query).await
    }
}

/// Retention of invocation records.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RecordsConfig {
    /// How long a finished call's record is kept after its last change.
    pub retention: Duration,
    /// The most records kept; the oldest are dropped first.
    pub max_records: usize,
    /// The most bytes of result bodies kept in all; the oldest records are dropped first.
    pub max_result_bytes: usize,
}

impl Default for RecordsConfig {
    /// 24 hours, at most 100,000 records and 256 MiB of result bodies.
    fn default() -> Self {
        RecordsConfig {
            retention: Duration::from_secs(24 * 3600),
            max_records: 100_000,
            max_result_bytes: 256 << 20,
        }
    }
}

impl RecordsConfig {
    /// Sets the retention.
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Sets the most records kept.
    #[must_use]
    pub fn with_max_records(mut self, max: usize) -> Self {
        self.max_records = max.max(1);
        self
    }

    /// Sets the most bytes of result bodies kept in all.
    #[must_use]
    pub fn with_max_result_bytes(mut self, max: usize) -> Self {
        self.max_result_bytes = max;
        self
    }
}

fn result_len(record: &InvocationRecord) -> usize {
    record.result.as_ref().map_or(0, |r| r.body.len())
}

const DEFAULT_LIMIT: usize = 100;

/// Calls by queue time.
type ByTime = BTreeSet<(DateTime<Utc>, String)>;

#[derive(Debug, Default)]
struct Index {
    by_id: HashMap<String, InvocationRecord>,
    /// Every call by queue time, oldest first.
    by_time: ByTime,
    /// Calls per (namespace, function) by queue time.
    by_function: HashMap<(String, String), ByTime>,
    /// Bytes of result bodies held.
    result_bytes: usize,
}

impl Index {
    /// Applies a put; false when it was ignored (a `queued` record over an existing one).
    fn put(&mut self, record: InvocationRecord) -> bool {
        if let Some(old) = self.by_id.get(&record.call_id) {
            if record.status == InvocationStatus::Queued
                && record.attempts == 0
                && old.status != InvocationStatus::Queued
            {
                return false;
            }
            if old.queued_at != record.queued_at {
                let key = (old.queued_at, old.call_id.clone());
                self.by_time.remove(&key);
                if let Some(set) = self
                    .by_function
                    .get_mut(&(old.namespace.clone(), old.function.clone()))
                {
                    set.remove(&key);
                }
            }
        }
        let key = (record.queued_at, record.call_id.clone());
        self.by_time.insert(key.clone());
        self.by_function
            .entry((record.namespace.clone(), record.function.clone()))
            .or_default()
            .insert(key);
        self.result_bytes += result_len(&record);
        if let Some(old) = self.by_id.insert(record.call_id.clone(), record) {
            self.result_bytes -= result_len(&old);
        }
        true
    }

    fn remove(&mut self, call_id: &str) {
        let Some(old) = self.by_id.remove(call_id) else {
            return;
        };
        self.result_bytes -= result_len(&old);
        let key = (old.queued_at, old.call_id);
        self.by_time.remove(&key);
        let fkey = (old.namespace, old.function);
        if let Some(set) = self.by_function.get_mut(&fkey) {
            set.remove(&key);
            if set.is_empty() {
                self.by_function.remove(&fkey);
            }
        }
    }

    /// Drops records over the count and finished ones past the retention, oldest first.
    fn evict(&mut self, config: &RecordsConfig, now: DateTime<Utc>) {
        let retention =
            chrono::Duration::from_std(config.retention).unwrap_or(chrono::Duration::MAX);
        while let Some((queued_at, call_id)) = self.by_time.first().cloned() {
            let over = self.by_id.len() > config.max_records
                || self.result_bytes > config.max_result_bytes;
            let expired = now.signed_duration_since(queued_at) > retention
                && self
                    .by_id
                    .get(&call_id)
                    .is_none_or(|r| now.signed_duration_since(r.updated_at) > retention);
            if !over && !expired {
                break;
            }
            self.remove(&call_id);
        }
    }

    fn list(&self, query: &ListQuery) -> Vec<InvocationRecord> {
        let limit = if query.limit == 0 {
            DEFAULT_LIMIT
        } else {
            query.limit
        };
        let matches = |r: &&InvocationRecord| {
            query.namespace.as_ref().is_none_or(|ns| *ns == r.namespace)
                && query.function.as_ref().is_none_or(|f| *f == r.function)
                && query.status.is_none_or(|s| s == r.status)
        };
        let keys: Box<dyn Iterator<Item = &(DateTime<Utc>, String)>> =
            match (&query.function, &query.namespace) {
                (Some(f), Some(ns)) => match self.by_function.get(&(ns.clone(), f.clone())) {
                    Some(set) => Box::new(set.iter().rev()),
                    None => Box::new(std::iter::empty()),
                },
                _ => Box::new(self.by_time.iter().rev()),
            };
        keys.filter_map(|(_, id)| self.by_id.get(id))
            .filter(matches)
            .take(limit)
            .cloned()
            .collect()
    }
}

/// Invocation records in memory. Cheap to clone (clones share the records).
#[derive(Debug, Clone, Default)]
pub struct MemoryInvocationStore {
    index: Arc<Mutex<Index>>,
    config: RecordsConfig,
}

impl MemoryInvocationStore {
    /// An empty store with the default retention.
    pub fn new() -> Self {
        Self::with_config(RecordsConfig::default())
    }

    /// An empty store with `config`'s retention.
    pub fn with_config(config: RecordsConfig) -> Self {
        MemoryInvocationStore {
            index: Arc::default(),
            config,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn apply(&self, record: InvocationRecord) -> bool {
        let mut index = self.lock();
        let applied = index.put(record);
        index.evict(&self.config, Utc::now());
        applied
    }
}

#[async_trait]
impl InvocationStore for MemoryInvocationStore {
    async fn put(&self, record: InvocationRecord, _durability: Durability) -> Result<()> {
        self.apply(record);
        Ok(())
    }

    async fn get(&self, call_id: &str) -> Result<Option<InvocationRecord>> {
        Ok(self.lock().by_id.get(call_id).cloned())
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<InvocationRecord>> {
        Ok(self.lock().list(&query))
    }
}

/// Invocation records in memory, backed by a durable log in a directory (beside the embedded
/// queue). Records are replayed when it opens; log segments whose records are all past the
/// retention are deleted.
#[derive(Debug, Clone)]
pub struct EmbeddedInvocationStore {
    memory: MemoryInvocationStore,
    wal: Arc<Wal>,
    /// The newest change in each log segment.
    newest: Arc<Mutex<BTreeMap<u64, DateTime<Utc>>>>,
}

impl EmbeddedInvocationStore {
    /// Opens (creating) the store in `dir` (blocking: call it at startup or from `spawn_blocking`).
    ///
    /// # Errors
    /// [`ErrorKind::Backend`] when the directory or its log cannot be read or written.
    pub fn open(dir: impl Into<PathBuf>, config: RecordsConfig) -> Result<Self> {
        let dir = dir.into();
        let memory = MemoryInvocationStore::with_config(config);
        let mut newest = BTreeMap::new();
        let mut replay = |pos: super::wal::Position, payload: Vec<u8>| match serde_json::from_slice::<
            InvocationRecord,
        >(&payload)
        {
            Ok(record) => {
                let time = newest.entry(pos.segment).or_insert(record.updated_at);
                *time = (*time).max(record.updated_at);
                memory.apply(record);
            }
            Err(err) => tracing::warn!(error = %err, "skipping an undecodable invocation record"),
        };
        let wal = Wal::open(&dir, 8 << 20, &mut replay)?;
        let store = EmbeddedInvocationStore {
            memory,
            wal: Arc::new(wal),
            newest: Arc::new(Mutex::new(newest)),
        };
        store.delete_expired_segments()?;
        Ok(store)
    }

    fn delete_expired_segments(&self) -> Result<()> {
        let retention = chrono::Duration::from_std(self.memory.config.retention)
            .unwrap_or(chrono::Duration::MAX);
        let now = Utc::now();
        let current = self.wal.current_segment();
        {
            let mut newest = self
                .newest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while let Some((&segment, &time)) = newest.first_key_value() {
                if segment >= current || now.signed_duration_since(time) <= retention {
                    break;
                }
                newest.remove(&segment);
            }
        }
        let keep_from = {
            let newest = self
                .newest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            newest
                .first_key_value()
                .map_or(current, |(seg, _)| (*seg).min(current))
        };
        for segment in self.wal.segments()? {
            if segment >= keep_from {
                break;
            }
            self.wal.remove_segment(segment)?;
        }
        Ok(())
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.memory.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.memory.is_empty()
    }
}

#[async_trait]
impl InvocationStore for EmbeddedInvocationStore {
    async fn put(&self, record: InvocationRecord, durability: Durability) -> Result<()> {
        let payload = serde_json::to_vec(&record).map_err(|e| {
            Error::new(ErrorKind::Internal, "cannot encode an invocation record").with_source(e)
        })?;
        let updated_at = record.updated_at;
        if !self.memory.apply(record) {
            return Ok(());
        }
        let segment_before = self.wal.current_segment();
        match durability {
            Durability::Durable => {
                let pos = self.wal.append(payload).await?;
                let mut newest = self
                    .newest
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let time = newest.entry(pos.segment).or_insert(updated_at);
                *time = (*time).max(updated_at);
            }
            Durability::Lazy => {
                self.wal.append_nowait(payload)?;
                // The exact segment is not known without waiting: count it in the current one and
                // the next, so that neither is deleted while the record may be in it.
                let mut newest = self
                    .newest
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for seg in [segment_before, segment_before + 1] {
                    let time = newest.entry(seg).or_insert(updated_at);
                    *time = (*time).max(updated_at);
                }
            }
        }
        if self.wal.current_segment() != segment_before {
            let store = self.clone();
            tokio::task::spawn_blocking(move || {
                if let Err(err) = store.delete_expired_segments() {
                    tracing::warn!(error = %err, "cannot delete expired invocation records");
                }
            });
        }
        Ok(())
    }

    async fn get(&self, call_id: &str) -> Result<Option<InvocationRecord>> {
        self.memory.get(call_id).await
    }

    async fn list(&self, query: ListQuery) -> Result<Vec<InvocationRecord>> {
        self.memory.list(query).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(function: &str) -> InvocationRecord {
        InvocationRecord::queued(&QueuedRequest::new(function, "ns"))
    }

    #[test]
    fn json_shape() {
        let mut r = record("echo");
        r.status = InvocationStatus::Succeeded;
        r.status_code = Some(200);
        r.result = Some(InvocationResult::new(
            Some("text/plain".into()),
            Bytes::from("hello world"),
            5,
        ));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["status"], "succeeded");
        assert_eq!(json["statusCode"], 200);
        assert_eq!(json["result"]["body"], "hello");
        assert_eq!(json["result"]["encoding"], "utf8");
        assert_eq!(json["result"]["size"], 11);
        assert_eq!(json["result"]["truncated"], true);
        assert_eq!(serde_json::from_value::<InvocationRecord>(json).unwrap(), r);
        r.result = Some(InvocationResult::new(
            None,
            Bytes::from_static(&[0xff, 0]),
            100,
        ));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["result"]["encoding"], "base64");
        assert_eq!(serde_json::from_value::<InvocationRecord>(json).unwrap(), r);
    }

    #[tokio::test]
    async fn queued_never_overwrites_and_lists_newest_first() {
        let store = MemoryInvocationStore::new();
        let a = record("f");
        let mut running = a.clone();
        running.status = InvocationStatus::Running;
        store.put(running.clone(), Durability::Lazy).await.unwrap();
        store.put(a.clone(), Durability::Lazy).await.unwrap();
        assert_eq!(
            store.get(&a.call_id).await.unwrap().unwrap().status,
            InvocationStatus::Running
        );
        let mut b = record("f");
        b.queued_at = a.queued_at + chrono::Duration::seconds(1);
        store.put(b.clone(), Durability::Lazy).await.unwrap();
        store.put(record("g"), Durability::Lazy).await.unwrap();
        let listed = store.list(ListQuery::function("f", "ns")).await.unwrap();
        let ids: Vec<_> = listed.iter().map(|r| r.call_id.as_str()).collect();
        assert_eq!(ids, [b.call_id.as_str(), a.call_id.as_str()]);
        let one = store
            .list(ListQuery::function("f", "ns").with_limit(1))
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        let running = store
            .list(ListQuery::default().with_status(InvocationStatus::Running))
            .await
            .unwrap();
        assert_eq!(running.len(), 1);
        assert!(
            store
                .list(ListQuery::function("f", "other"))
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn retention_and_count_bound_the_store() {
        let store =
            MemoryInvocationStore::with_config(RecordsConfig::default().with_max_records(3));
        let records: Vec<_> = (0..5).map(|_| record("f")).collect();
        for r in &records {
            store.put(r.clone(), Durability::Lazy).await.unwrap();
        }
        assert_eq!(store.len(), 3);
        assert!(store.get(&records[0].call_id).await.unwrap().is_none());
        assert!(store.get(&records[4].call_id).await.unwrap().is_some());

        let store =
            MemoryInvocationStore::with_config(RecordsConfig::default().with_max_result_bytes(250));
        let mut ids = Vec::new();
        for _ in 0..3 {
            let mut r = record("f");
            r.result = Some(InvocationResult::new(
                None,
                Bytes::from(vec![b'x'; 100]),
                1000,
            ));
            ids.push(r.call_id.clone());
            store.put(r, Durability::Lazy).await.unwrap();
        }
        assert_eq!(
            store.len(),
            2,
            "the oldest result went over the byte budget"
        );
        assert!(store.get(&ids[0]).await.unwrap().is_none());

        let store = MemoryInvocationStore::with_config(
            RecordsConfig::default().with_retention(Duration::from_secs(60)),
        );
        let mut old = record("f");
        old.queued_at = Utc::now() - chrono::Duration::hours(2);
        old.updated_at = old.queued_at;
        store.put(old.clone(), Durability::Lazy).await.unwrap();
        store.put(record("f"), Durability::Lazy).await.unwrap();
        assert!(store.get(&old.call_id).await.unwrap().is_none());
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn embedded_records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedInvocationStore::open(dir.path(), RecordsConfig::default()).unwrap();
        let a = record("f");
        store.put(a.clone(), Durability::Lazy).await.unwrap();
        let mut done = a.clone();
        done.status = InvocationStatus::Failed;
        done.attempts = 3;
        done.status_code = Some(500);
        done.result = Some(InvocationResult::new(
            None,
            Bytes::from_static(&[1, 2, 255]),
            10,
        ));
        store.put(done.clone(), Durability::Durable).await.unwrap();
        drop(store);
        let store = EmbeddedInvocationStore::open(dir.path(), RecordsConfig::default()).unwrap();
        assert_eq!(store.get(&a.call_id).await.unwrap(), Some(done));
        assert_eq!(store.len(), 1);
    }
}
