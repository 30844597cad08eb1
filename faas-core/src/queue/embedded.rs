//! [`EmbeddedQueue`]: the durable queue of `faas up`, an append-only log in a directory.
//!
//! Every state change is a record in a [write-ahead log](super::wal) with group commit: `publish`
//! returns after its `enqueue` record is synced (concurrent publishes share one `fdatasync`), a
//! cancellation after its `cancel` record is; an ack writes an `ack` record and each delivery a
//! `deliver` record (counting attempts) without waiting for the sync: an ack lost in a crash only
//! delivers the call once more. Opening the queue replays the log: every call enqueued and
//! neither acked nor cancelled is delivered again, including the ones that were running when the
//! process died.
//!
//! The log rotates into segments; a segment is deleted once it and every older segment hold no
//! pending call. Bodies larger than a few KiB are not kept in memory: they are read back from the
//! log when delivered.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use super::memory::DEFAULT_ACK_WAIT;
use super::sched::Scheduler;
use super::wal::{Position, Wal};
use super::{Acknowledger, Delivery, Queue, QueuedRequest, codec};
use crate::{Error, ErrorKind, Result};

const KIND_ENQUEUE: u8 = 1;
const KIND_ACK: u8 = 2;
const KIND_CANCEL: u8 = 3;
const KIND_DELIVER: u8 = 4;

/// The default bound on pending calls of an [`EmbeddedQueue`].
pub const DEFAULT_MAX_PENDING: usize = 250_000;

/// Settings of an [`EmbeddedQueue`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EmbeddedQueueConfig {
    /// The directory of the log (created if missing).
    pub dir: PathBuf,
    /// A delivery neither acked nor marked in progress for this long is delivered again.
    pub ack_wait: Duration,
    /// The size at which the log starts a new segment.
    pub segment_bytes: u64,
    /// Requests up to this encoded size stay in memory while pending; larger ones are read back
    /// from the log on delivery.
    pub inline_bytes: usize,
    /// The most calls pending at once; a publish beyond it fails with
    /// [`ErrorKind::TooManyRequests`] (the gateway answers 429) instead of growing memory without
    /// bound: each pending call keeps a few hundred bytes in memory, plus its body up to
    /// `inline_bytes`. Calls recovered at open are not refused. Default 250,000.
    pub max_pending: usize,
}

impl EmbeddedQueueConfig {
    /// Defaults: ack deadline 60 s, 64 MiB segments, requests up to 64 KiB kept in memory, at most
    /// [`DEFAULT_MAX_PENDING`] calls pending.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EmbeddedQueueConfig {
            dir: dir.into(),
            ack_wait: DEFAULT_ACK_WAIT,
            segment_bytes: 64 << 20,
            inline_bytes: 64 << 10,
            max_pending: DEFAULT_MAX_PENDING,
        }
    }

    /// Sets the most calls pending at once (at least 1).
    #[must_use]
    pub fn with_max_pending(mut self, max: usize) -> Self {
        self.max_pending = max.max(1);
        self
    }

    /// Sets the ack deadline.
    #[must_use]
    pub fn with_ack_wait(mut self, ack_wait: Duration) -> Self {
        self.ack_wait = ack_wait;
        self
    }

    /// Sets the segment size.
    #[must_use]
    pub fn with_segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes.max(1);
        self
    }

    /// Sets the largest request kept in memory.
    #[must_use]
    pub fn with_inline_bytes(mut self, bytes: usize) -> Self {
        self.inline_bytes = bytes;
        self
    }
}

#[derive(Debug, Clone)]
struct Payload {
    pos: Position,
    request: Option<QueuedRequest>,
}

#[derive(Debug)]
struct Inner {
    wal: Wal,
    sched: Scheduler<Payload>,
    /// Pending calls per segment of their `enqueue` record.
    live: Mutex<BTreeMap<u64, usize>>,
    /// Publishers hold it shared between writing a call and counting it live; compaction holds
    /// it exclusively, so it never deletes a segment with a call not yet counted.
    gate: tokio::sync::RwLock<()>,
    inline_bytes: usize,
    max_pending: usize,
}

/// The durable, embedded [`Queue`]: survives `kill -9` of its process. Cheap to clone.
///
/// One process at a time: the directory is locked (`flock` on `<dir>/lock`) while the queue is open,
/// and a second open, from this process or another, fails with [`ErrorKind::Unavailable`].
///
/// ```no_run
/// # async fn demo() -> faas_core::Result<()> {
/// use faas_core::queue::{EmbeddedQueue, EmbeddedQueueConfig, Queue, QueuedRequest};
/// let queue = EmbeddedQueue::open(EmbeddedQueueConfig::new("/var/lib/faas/queue"))?;
/// queue.publish(QueuedRequest::new("echo", "openfaas-fn")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

fn record(kind: u8, call_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + call_id.len());
    out.push(kind);
    out.extend_from_slice(call_id.as_bytes());
    out
}

#[derive(Debug)]
struct Recovered {
    pos: Position,
    request: Option<QueuedRequest>,
    deliveries: u32,
}

impl EmbeddedQueue {
    /// Opens the queue in `config.dir`, replaying its log (blocking: call it at startup or from
    /// `spawn_blocking`). Calls pending when the log was last written are delivered again.
    ///
    /// # Errors
    /// [`ErrorKind::Backend`] when the directory or the log cannot be read or written,
    /// [`ErrorKind::Unavailable`] when another queue has the directory open.
    pub fn open(config: EmbeddedQueueConfig) -> Result<Self> {
        let mut pending: HashMap<String, Recovered> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let inline_bytes = config.inline_bytes;
        let mut replay = |pos: Position, payload: Vec<u8>| {
            let Some((&kind, rest)) = payload.split_first() else {
                return;
            };
            match kind {
                KIND_ENQUEUE => match codec::decode(Bytes::from(payload).slice(1..)) {
                    Ok(request) => {
                        if pending.contains_key(&request.call_id) {
                            return;
                        }
                        order.push(request.call_id.clone());
                        let keep = pos.len as usize <= inline_bytes;
                        pending.insert(
                            request.call_id.clone(),
                            Recovered {
                                pos,
                                request: keep.then_some(request),
                                deliveries: 0,
                            },
                        );
                    }
                    Err(err) => {
                        tracing::error!(error = %err, "skipping an undecodable queued call")
                    }
                },
                KIND_ACK | KIND_CANCEL => {
                    if let Ok(id) = std::str::from_utf8(rest) {
                        pending.remove(id);
                    }
                }
                KIND_DELIVER => {
                    if let Some(p) = std::str::from_utf8(rest)
                        .ok()
                        .and_then(|id| pending.get_mut(id))
                    {
                        p.deliveries = p.deliveries.saturating_add(1);
                    }
                }
                other => tracing::warn!(kind = other, "skipping an unknown queue log record"),
            }
        };
        let wal = Wal::open(&config.dir, config.segment_bytes, &mut replay)?;
        let sched = Scheduler::new(config.ack_wait);
        let mut live = BTreeMap::new();
        let mut recovered = 0usize;
        for call_id in order {
            if let Some(p) = pending.remove(&call_id) {
                *live.entry(p.pos.segment).or_insert(0) += 1;
                sched.insert(
                    call_id,
                    Payload {
                        pos: p.pos,
                        request: p.request,
                    },
                    p.deliveries,
                );
                recovered += 1;
            }
        }
        if recovered > 0 {
            tracing::info!(recovered, dir = %config.dir.display(), "recovered pending async calls");
        }
        let queue = EmbeddedQueue {
            inner: Arc::new(Inner {
                wal,
                sched,
                live: Mutex::new(live),
                gate: tokio::sync::RwLock::new(()),
                inline_bytes,
                max_pending: config.max_pending.max(1),
            }),
        };
        queue.inner.delete_unused_segments()?;
        Ok(queue)
    }

    /// Calls not yet acked or cancelled (queued, waiting for a retry, or running).
    pub fn len(&self) -> usize {
        self.inner.sched.len()
    }

    /// Whether no call is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of log segments on disk.
    ///
    /// # Errors
    /// [`ErrorKind::Backend`] when the directory cannot be listed.
    pub fn segments(&self) -> Result<usize> {
        Ok(self.inner.wal.segments()?.len())
    }
}

impl Inner {
    fn lock_live(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, usize>> {
        self.live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a call done; true when this may have freed the oldest segment.
    fn release(&self, payload: &Payload) -> bool {
        let mut live = self.lock_live();
        let segment = payload.pos.segment;
        let Some(count) = live.get_mut(&segment) else {
            return false;
        };
        *count -= 1;
        if *count == 0 {
            live.remove(&segment);
            return live
                .first_key_value()
                .is_none_or(|(&first, _)| first > segment);
        }
        false
    }

    /// Deletes every segment older than the oldest one with a pending call (blocking).
    fn delete_unused_segments(&self) -> Result<()> {
        let keep_from = {
            let live = self.lock_live();
            let current = self.wal.current_segment();
            live.first_key_value()
                .map_or(current, |(&first, _)| first.min(current))
        };
        for segment in self.wal.segments()? {
            if segment >= keep_from {
                break;
            }
            self.wal.remove_segment(segment)?;
            tracing::debug!(segment, "deleted a queue log segment");
        }
        Ok(())
    }

    async fn compact(self: &Arc<Self>) {
        let _exclusive = self.gate.write().await;
        let inner = self.clone();
        let result = tokio::task::spawn_blocking(move || inner.delete_unused_segments()).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot compact the queue log"),
            Err(err) => tracing::warn!(error = %err, "queue log compaction panicked"),
        }
    }

    async fn load(self: &Arc<Self>, payload: Payload) -> Result<QueuedRequest> {
        if let Some(request) = payload.request {
            return Ok(request);
        }
        let inner = self.clone();
        let bytes = tokio::task::spawn_blocking(move || inner.wal.read(payload.pos))
            .await
            .map_err(|e| Error::internal("reading a queued call panicked").with_source(e))??;
        codec::decode(Bytes::from(bytes).slice(1..))
    }
}

#[derive(Debug)]
struct EmbeddedAcker {
    inner: Arc<Inner>,
    call_id: String,
    generation: u64,
    done: AtomicBool,
}

#[async_trait]
impl Acknowledger for EmbeddedAcker {
    async fn ack(&self) -> Result<()> {
        // Not waited for: a crash before it reaches the disk delivers the call once more, which
        // at-least-once allows; the queue worker records the outcome durably before it acks, and
        // acks a redelivered call whose record is final without running it again.
        self.inner
            .wal
            .append_nowait(record(KIND_ACK, &self.call_id))?;
        self.done.store(true, Ordering::Release);
        if let Some(payload) = self.inner.sched.remove(&self.call_id)
            && self.inner.release(&payload)
        {
            self.inner.compact().await;
        }
        Ok(())
    }

    async fn nack(&self, delay: Duration) -> Result<()> {
        self.done.store(true, Ordering::Release);
        self.inner.sched.nack(&self.call_id, self.generation, delay);
        Ok(())
    }

    async fn in_progress(&self) -> Result<()> {
        self.inner.sched.touch(&self.call_id, self.generation);
        Ok(())
    }
}

impl Drop for EmbeddedAcker {
    fn drop(&mut self) {
        if !self.done.load(Ordering::Acquire) {
            self.inner
                .sched
                .nack(&self.call_id, self.generation, Duration::ZERO);
        }
    }
}

#[async_trait]
impl Queue for EmbeddedQueue {
    async fn publish(&self, request: QueuedRequest) -> Result<()> {
        if self.inner.sched.contains(&request.call_id) {
            return Err(Error::already_exists(format!(
                "call {} is already queued",
                request.call_id
            )));
        }
        let pending = self.inner.sched.len();
        if pending >= self.inner.max_pending {
            return Err(Error::new(
                ErrorKind::TooManyRequests,
                format!(
                    "the async queue is full: {pending} calls pending (at most {}); retry later",
                    self.inner.max_pending
                ),
            ));
        }
        let mut payload = Vec::with_capacity(1 + codec::encoded_len(&request));
        payload.push(KIND_ENQUEUE);
        codec::encode_into(&request, &mut payload);
        let keep = payload.len() <= self.inner.inline_bytes;
        let _shared = self.inner.gate.read().await;
        let pos = self.inner.wal.append(payload).await?;
        *self.inner.lock_live().entry(pos.segment).or_insert(0) += 1;
        let call_id = request.call_id.clone();
        let payload = Payload {
            pos,
            request: keep.then(|| {
                // A small body is often a slice of a connection's read buffer: copy it, so that
                // a pending call does not keep the whole buffer alive.
                let mut request = request;
                request.body = Bytes::copy_from_slice(&request.body);
                request
            }),
        };
        if !self.inner.sched.insert(call_id, payload.clone(), 0) {
            // Published twice concurrently: the log holds both, replay keeps the first.
            self.inner.release(&payload);
        }
        Ok(())
    }

    async fn consume(&self) -> Result<BoxStream<'static, Result<Delivery>>> {
        let inner = self.inner.clone();
        Ok(stream::unfold(inner, |inner| async move {
            let taken = inner.sched.take().await;
            if let Err(err) = inner.wal.append_nowait(record(KIND_DELIVER, &taken.call_id)) {
                tracing::warn!(error = %err, "cannot count a delivery");
            }
            let payload = taken.payload.clone();
            let item = match inner.load(taken.payload).await {
                Ok(request) => {
                    let acker = EmbeddedAcker {
                        inner: inner.clone(),
                        call_id: taken.call_id,
                        generation: taken.generation,
                        done: AtomicBool::new(false),
                    };
                    Ok(Delivery::new(request, taken.attempt, acker))
                }
                Err(err) => {
                    // A call that cannot be read back can never run: drop it, loudly.
                    tracing::error!(call_id = taken.call_id, error = %err, "dropping an unreadable queued call");
                    if inner.wal.append(record(KIND_ACK, &taken.call_id)).await.is_ok() {
                        inner.sched.remove(&taken.call_id);
                        inner.release(&payload);
                    }
                    Err(Error::new(ErrorKind::Backend, format!("queued call {} is unreadable", taken.call_id))
                        .with_source(err))
                }
            };
            Some((item, inner))
        })
        .boxed())
    }

    async fn cancel(&self, call_id: &str) -> Result<bool> {
        let Some(payload) = self.inner.sched.cancel(call_id) else {
            return Ok(false);
        };
        match self.inner.wal.append(record(KIND_CANCEL, call_id)).await {
            Ok(_) => {
                if self.inner.release(&payload) {
                    self.inner.compact().await;
                }
                Ok(true)
            }
            Err(err) => {
                self.inner.sched.restore(call_id.to_owned(), payload);
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_refuses_calls_until_one_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let queue =
            EmbeddedQueue::open(EmbeddedQueueConfig::new(dir.path()).with_max_pending(2)).unwrap();
        for _ in 0..2 {
            queue.publish(QueuedRequest::new("f", "ns")).await.unwrap();
        }
        let refused = QueuedRequest::new("f", "ns");
        let err = queue.publish(refused.clone()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooManyRequests);
        assert!(err.to_string().contains("2 calls pending"), "{err}");
        assert_eq!(queue.len(), 2);
        // A running call still counts; once acked there is room again.
        let mut deliveries = queue.consume().await.unwrap();
        let first = deliveries.next().await.unwrap().unwrap();
        assert!(queue.publish(refused.clone()).await.is_err());
        first.ack().await.unwrap();
        queue.publish(refused.clone()).await.unwrap();
        assert_eq!(queue.len(), 2);
        // Nothing refused was written: a reopen finds the two accepted calls only.
        drop(first);
        drop(deliveries);
        drop(queue);
        let reopened = EmbeddedQueue::open(EmbeddedQueueConfig::new(dir.path())).unwrap();
        assert_eq!(reopened.len(), 2);
    }

    #[tokio::test]
    async fn pending_calls_survive_reopen_and_acked_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let config = EmbeddedQueueConfig::new(dir.path()).with_inline_bytes(16);
        let queue = EmbeddedQueue::open(config.clone()).unwrap();
        let big = QueuedRequest::new("f", "ns").with_body(vec![7u8; 100_000]);
        let small = QueuedRequest::new("f", "ns").with_body("x");
        let done = QueuedRequest::new("f", "ns");
        let cancelled = QueuedRequest::new("f", "ns");
        for r in [&done, &big, &small, &cancelled] {
            queue.publish(r.clone()).await.unwrap();
        }
        let mut deliveries = queue.consume().await.unwrap();
        let first = deliveries.next().await.unwrap().unwrap();
        assert_eq!(first.request, done);
        first.ack().await.unwrap();
        let second = deliveries.next().await.unwrap().unwrap();
        assert_eq!(second.request, big);
        // An ack is written behind the caller's back; a cancel waits for its record, which the
        // log writes after the ack's: once it returns, both are on disk for the copy below.
        assert!(queue.cancel(&cancelled.call_id).await.unwrap());
        // The process dies here: `second` was running, never acked. What survives a crash is the
        // directory as it is now; the leaked delivery keeps this process's log (and its lock) open,
        // so the "restarted process" opens a copy of the directory.
        std::mem::forget(second);
        drop(deliveries);
        drop(queue);
        let restarted = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() != "lock" {
                std::fs::copy(entry.path(), restarted.path().join(entry.file_name())).unwrap();
            }
        }
        let config = EmbeddedQueueConfig::new(restarted.path()).with_inline_bytes(16);

        let queue = EmbeddedQueue::open(config).unwrap();
        assert_eq!(queue.len(), 2);
        let mut deliveries = queue.consume().await.unwrap();
        let again = deliveries.next().await.unwrap().unwrap();
        assert_eq!(again.request, big);
        assert_eq!(
            again.attempt, 2,
            "the crashed delivery counts as an attempt"
        );
        let next = deliveries.next().await.unwrap().unwrap();
        assert_eq!(next.request, small);
        assert_eq!(next.attempt, 1);
        again.ack().await.unwrap();
        next.ack().await.unwrap();
        assert!(queue.is_empty());
    }

    #[tokio::test]
    async fn segments_are_deleted_once_their_calls_are_done() {
        let dir = tempfile::tempdir().unwrap();
        let config = EmbeddedQueueConfig::new(dir.path()).with_segment_bytes(2048);
        let queue = EmbeddedQueue::open(config.clone()).unwrap();
        for _ in 0..100 {
            queue
                .publish(QueuedRequest::new("f", "ns").with_body(vec![1u8; 200]))
                .await
                .unwrap();
        }
        assert!(queue.segments().unwrap() > 5);
        let mut deliveries = queue.consume().await.unwrap();
        for _ in 0..100 {
            deliveries
                .next()
                .await
                .unwrap()
                .unwrap()
                .ack()
                .await
                .unwrap();
        }
        assert!(
            queue.segments().unwrap() <= 2,
            "{}",
            queue.segments().unwrap()
        );
        drop(deliveries);
        drop(queue);
        let queue = EmbeddedQueue::open(config).unwrap();
        assert!(queue.is_empty());
    }
}
