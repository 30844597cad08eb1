//! The delivery state machine shared by the in-memory and the embedded queue: which calls are
//! ready, delayed (nacked with a delay) or in flight (with an ack deadline), and who gets the next.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ready,
    Delayed,
    InFlight,
}

#[derive(Debug)]
struct Entry<P> {
    payload: P,
    deliveries: u32,
    generation: u64,
    status: Status,
    due: Option<Instant>,
}

#[derive(Debug)]
struct State<P> {
    entries: HashMap<String, Entry<P>>,
    ready: VecDeque<(String, u64)>,
    timers: BTreeSet<(Instant, u64, String)>,
    next_generation: u64,
}

/// One call handed to a consumer.
#[derive(Debug)]
pub(super) struct Taken<P> {
    pub(super) call_id: String,
    pub(super) payload: P,
    pub(super) attempt: u32,
    pub(super) generation: u64,
}

/// The scheduler: a map of calls plus a ready queue and timers, behind one short-held lock.
#[derive(Debug)]
pub(super) struct Scheduler<P> {
    state: Mutex<State<P>>,
    notify: Notify,
    ack_wait: Duration,
}

impl<P: Clone> Scheduler<P> {
    pub(super) fn new(ack_wait: Duration) -> Self {
        Scheduler {
            state: Mutex::new(State {
                entries: HashMap::new(),
                ready: VecDeque::new(),
                timers: BTreeSet::new(),
                next_generation: 1,
            }),
            notify: Notify::new(),
            ack_wait,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<P>> {
        // A panic while holding this lock leaves the state consistent (every mutation is a few
        // infallible steps), so a poisoned lock is safe to keep using.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds a ready call that has been delivered `deliveries` times before; false if it is known.
    pub(super) fn insert(&self, call_id: String, payload: P, deliveries: u32) -> bool {
        {
            let mut state = self.lock();
            if state.entries.contains_key(&call_id) {
                return false;
            }
            let generation = state.next_generation;
            state.next_generation += 1;
            state.entries.insert(
                call_id.clone(),
                Entry {
                    payload,
                    deliveries,
                    generation,
                    status: Status::Ready,
                    due: None,
                },
            );
            state.ready.push_back((call_id, generation));
        }
        self.notify.notify_one();
        true
    }

    /// Calls known (ready, delayed or in flight).
    pub(super) fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether `call_id` is known.
    pub(super) fn contains(&self, call_id: &str) -> bool {
        self.lock().entries.contains_key(call_id)
    }

    /// Moves due timers to the ready queue and takes the next ready call, or tells when the next
    /// timer is due.
    fn try_take(&self) -> Result<Taken<P>, Option<Instant>> {
        let mut state = self.lock();
        let state = &mut *state;
        let now = Instant::now();
        while let Some((due, generation, call_id)) = state.timers.first().cloned() {
            if due > now {
                break;
            }
            state.timers.pop_first();
            let Some(entry) = state.entries.get_mut(&call_id) else {
                continue;
            };
            if entry.generation != generation
                || entry.due != Some(due)
                || entry.status == Status::Ready
            {
                continue;
            }
            if entry.status == Status::InFlight {
                tracing::debug!(call_id, "ack deadline passed, delivering again");
            }
            let generation = state.next_generation;
            state.next_generation += 1;
            entry.generation = generation;
            entry.status = Status::Ready;
            entry.due = None;
            state.ready.push_back((call_id, generation));
        }
        while let Some((call_id, generation)) = state.ready.pop_front() {
            let Some(entry) = state.entries.get_mut(&call_id) else {
                continue;
            };
            if entry.generation != generation || entry.status != Status::Ready {
                continue;
            }
            let generation = state.next_generation;
            state.next_generation += 1;
            let due = now + self.ack_wait;
            entry.generation = generation;
            entry.status = Status::InFlight;
            entry.deliveries = entry.deliveries.saturating_add(1);
            entry.due = Some(due);
            state.timers.insert((due, generation, call_id.clone()));
            return Ok(Taken {
                call_id,
                payload: entry.payload.clone(),
                attempt: entry.deliveries,
                generation,
            });
        }
        Err(state.timers.first().map(|(due, _, _)| *due))
    }

    /// Waits for the next call to deliver.
    pub(super) async fn take(&self) -> Taken<P> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.try_take() {
                Ok(taken) => {
                    // More may be ready: let another waiting consumer look too.
                    if !self.lock().ready.is_empty() {
                        self.notify.notify_one();
                    }
                    return taken;
                }
                Err(Some(due)) => {
                    tokio::select! {
                        () = &mut notified => {}
                        () = tokio::time::sleep_until(due) => {}
                    }
                }
                Err(None) => notified.await,
            }
        }
    }

    /// Removes a call for good (acked); returns its payload if it was known.
    pub(super) fn remove(&self, call_id: &str) -> Option<P> {
        self.lock().entries.remove(call_id).map(|e| e.payload)
    }

    /// Delivers the call again after `delay`, if `generation` is still its current delivery.
    pub(super) fn nack(&self, call_id: &str, generation: u64, delay: Duration) -> bool {
        {
            let mut state = self.lock();
            let state = &mut *state;
            let next = state.next_generation;
            let Some(entry) = state.entries.get_mut(call_id) else {
                return false;
            };
            if entry.generation != generation || entry.status != Status::InFlight {
                return false;
            }
            state.next_generation += 1;
            entry.generation = next;
            if delay.is_zero() {
                entry.status = Status::Ready;
                entry.due = None;
                state.ready.push_back((call_id.to_owned(), next));
            } else {
                let due = Instant::now() + delay;
                entry.status = Status::Delayed;
                entry.due = Some(due);
                state.timers.insert((due, next, call_id.to_owned()));
            }
        }
        // Waiting consumers recompute their next wake-up.
        self.notify.notify_waiters();
        self.notify.notify_one();
        true
    }

    /// Extends the ack deadline of the current delivery.
    pub(super) fn touch(&self, call_id: &str, generation: u64) -> bool {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(entry) = state.entries.get_mut(call_id) else {
            return false;
        };
        if entry.generation != generation || entry.status != Status::InFlight {
            return false;
        }
        let due = Instant::now() + self.ack_wait;
        entry.due = Some(due);
        state.timers.insert((due, generation, call_id.to_owned()));
        true
    }

    /// Removes a call that was never delivered; returns its payload.
    pub(super) fn cancel(&self, call_id: &str) -> Option<P> {
        let mut state = self.lock();
        let entry = state.entries.get(call_id)?;
        if entry.deliveries > 0 || entry.status == Status::InFlight {
            return None;
        }
        state.entries.remove(call_id).map(|e| e.payload)
    }

    /// Puts back a call removed by [`Scheduler::cancel`] whose cancellation could not be stored.
    pub(super) fn restore(&self, call_id: String, payload: P) {
        self.insert(call_id, payload, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_then_redelivers_on_nack() {
        let s = Scheduler::new(Duration::from_secs(60));
        assert!(s.insert("a".into(), 1, 0));
        assert!(s.insert("b".into(), 2, 0));
        assert!(!s.insert("a".into(), 3, 0));
        let a = s.take().await;
        assert_eq!((a.call_id.as_str(), a.payload, a.attempt), ("a", 1, 1));
        assert!(s.nack("a", a.generation, Duration::ZERO));
        assert!(
            !s.nack("a", a.generation, Duration::ZERO),
            "a stale delivery cannot nack"
        );
        let b = s.take().await;
        assert_eq!(b.call_id, "b");
        let a2 = s.take().await;
        assert_eq!((a2.call_id.as_str(), a2.attempt), ("a", 2));
        assert_eq!(s.remove("a"), Some(1));
        assert_eq!(s.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn ack_deadline_and_touch() {
        let s = Scheduler::new(Duration::from_secs(10));
        s.insert("a".into(), (), 0);
        let first = s.take().await;
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(s.touch("a", first.generation));
        tokio::time::advance(Duration::from_secs(6)).await;
        assert!(s.try_take().is_err(), "touched: not redelivered yet");
        let again = s.take().await;
        assert_eq!(again.attempt, 2);
        assert!(!s.touch("a", first.generation));
    }

    #[tokio::test]
    async fn cancel_only_before_first_delivery() {
        let s = Scheduler::new(Duration::from_secs(60));
        s.insert("a".into(), (), 0);
        s.insert("b".into(), (), 0);
        assert_eq!(s.cancel("b"), Some(()));
        let a = s.take().await;
        assert_eq!(s.cancel("a"), None);
        assert!(s.nack("a", a.generation, Duration::from_secs(30)));
        assert_eq!(s.cancel("a"), None, "a retried call has started");
        assert_eq!(s.cancel("zzz"), None);
    }
}
