//! [`MemoryQueue`]: the in-memory queue, for tests and embedders that accept losing calls on exit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use super::sched::Scheduler;
use super::{Acknowledger, Delivery, Queue, QueuedRequest};
use crate::{Error, Result};

/// The default ack deadline of the in-process queues: a delivery neither acked nor marked in
/// progress for this long is delivered again.
pub(super) const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(60);

/// An in-memory [`Queue`]: nothing survives the process. Cheap to clone (clones share the queue).
///
/// ```
/// use std::time::Duration;
/// use faas_core::queue::MemoryQueue;
/// let queue = MemoryQueue::with_ack_wait(Duration::from_secs(5));
/// assert!(queue.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    sched: Arc<Scheduler<QueuedRequest>>,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryQueue {
    /// An empty queue with an ack deadline of 60 s.
    pub fn new() -> Self {
        Self::with_ack_wait(DEFAULT_ACK_WAIT)
    }

    /// An empty queue whose deliveries are redelivered when not acked or touched within `ack_wait`.
    pub fn with_ack_wait(ack_wait: Duration) -> Self {
        MemoryQueue {
            sched: Arc::new(Scheduler::new(ack_wait)),
        }
    }

    /// Calls not yet acked (queued, waiting for a retry, or running).
    pub fn len(&self) -> usize {
        self.sched.len()
    }

    /// Whether no call is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug)]
struct MemoryAcker {
    sched: Arc<Scheduler<QueuedRequest>>,
    call_id: String,
    generation: u64,
    done: AtomicBool,
}

#[async_trait]
impl Acknowledger for MemoryAcker {
    async fn ack(&self) -> Result<()> {
        self.done.store(true, Ordering::Release);
        self.sched.remove(&self.call_id);
        Ok(())
    }

    async fn nack(&self, delay: Duration) -> Result<()> {
        self.done.store(true, Ordering::Release);
        self.sched.nack(&self.call_id, self.generation, delay);
        Ok(())
    }

    async fn in_progress(&self) -> Result<()> {
        self.sched.touch(&self.call_id, self.generation);
        Ok(())
    }
}

impl Drop for MemoryAcker {
    fn drop(&mut self) {
        if !self.done.load(Ordering::Acquire) {
            self.sched
                .nack(&self.call_id, self.generation, Duration::ZERO);
        }
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn publish(&self, mut request: QueuedRequest) -> Result<()> {
        // The body may be a slice of a larger buffer: keep only its bytes while it waits.
        request.body = Bytes::copy_from_slice(&request.body);
        let call_id = request.call_id.clone();
        if !self.sched.insert(call_id.clone(), request, 0) {
            return Err(Error::already_exists(format!(
                "call {call_id} is already queued"
            )));
        }
        Ok(())
    }

    async fn consume(&self) -> Result<BoxStream<'static, Result<Delivery>>> {
        let sched = self.sched.clone();
        Ok(stream::unfold(sched, |sched| async move {
            let taken = sched.take().await;
            let acker = MemoryAcker {
                sched: sched.clone(),
                call_id: taken.call_id,
                generation: taken.generation,
                done: AtomicBool::new(false),
            };
            Some((
                Ok(Delivery::new(taken.payload, taken.attempt, acker)),
                sched,
            ))
        })
        .boxed())
    }

    async fn cancel(&self, call_id: &str) -> Result<bool> {
        Ok(self.sched.cancel(call_id).is_some())
    }
}
