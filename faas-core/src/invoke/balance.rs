//! Replica selection: a short-lived cache of each function's ready endpoints and timeout, and
//! least-in-flight balancing over them (ties broken round-robin).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use http::HeaderValue;
use http::uri::Authority;
use tokio::time::Instant;

use crate::model::Endpoint;
use crate::{Error, ErrorKind, Result};

/// One ready replica of a function and the requests it is serving through this invoker.
#[derive(Debug)]
pub(super) struct Replica {
    pub(super) endpoint: Endpoint,
    pub(super) authority: Authority,
    /// `Host` of requests to the replica (its authority), for in-process calls.
    pub(super) host: HeaderValue,
    inflight: AtomicUsize,
    /// Milliseconds since [`base`] until which the replica is avoided (a connection to it failed).
    down_until: AtomicU64,
}

/// The origin of [`Replica::down_until`].
fn base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn now_millis() -> u64 {
    Instant::now().saturating_duration_since(base()).as_millis() as u64
}

impl Replica {
    fn new(endpoint: Endpoint) -> Result<Self> {
        let authority: Authority =
            endpoint
                .authority
                .parse()
                .map_err(|e: http::uri::InvalidUri| {
                    Error::new(
                        ErrorKind::Backend,
                        format!(
                            "replica {} has an invalid address {:?}",
                            endpoint.id, endpoint.authority
                        ),
                    )
                    .with_source(e)
                })?;
        let host = HeaderValue::from_str(authority.as_str()).map_err(|e| {
            Error::new(
                ErrorKind::Backend,
                format!("replica {} has an invalid address", endpoint.id),
            )
            .with_source(e)
        })?;
        Ok(Replica {
            endpoint,
            authority,
            host,
            inflight: AtomicUsize::new(0),
            down_until: AtomicU64::new(0),
        })
    }

    /// Avoids this replica for `period` (a connection to it failed); it is still used when no other
    /// replica is left.
    pub(super) fn mark_down(&self, period: Duration) {
        self.down_until
            .store(now_millis() + period.as_millis() as u64, Ordering::Relaxed);
    }

    fn is_down(&self, now: u64) -> bool {
        self.down_until.load(Ordering::Relaxed) > now
    }

    /// Requests in flight on this replica.
    pub(super) fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// Holds one in-flight slot of a replica; releases it when dropped.
#[derive(Debug)]
pub(super) struct InflightGuard(Arc<Replica>);

impl InflightGuard {
    pub(super) fn new(replica: Arc<Replica>) -> Self {
        replica.inflight.fetch_add(1, Ordering::Relaxed);
        InflightGuard(replica)
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What the invoker knows of a function at one moment.
#[derive(Debug)]
pub(super) struct Snapshot {
    pub(super) replicas: Vec<Arc<Replica>>,
    pub(super) timeout: Duration,
    pub(super) fetched: Instant,
}

/// Per-function state: the latest snapshot, the lock that serialises refreshes (and scale-ups), and
/// the round-robin cursor.
#[derive(Debug, Default)]
pub(super) struct FunctionState {
    pub(super) refresh: tokio::sync::Mutex<()>,
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    cursor: AtomicUsize,
}

impl FunctionState {
    pub(super) fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Stores a new snapshot built from `endpoints`, keeping the in-flight counters of replicas
    /// that are still there.
    pub(super) fn store(
        &self,
        endpoints: Vec<Endpoint>,
        timeout: Duration,
    ) -> Result<Arc<Snapshot>> {
        let previous = self.snapshot();
        let mut replicas = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let kept = previous
                .as_ref()
                .and_then(|p| p.replicas.iter().find(|r| r.endpoint == endpoint).cloned());
            replicas.push(match kept {
                Some(replica) => replica,
                None => Arc::new(Replica::new(endpoint)?),
            });
        }
        let snapshot = Arc::new(Snapshot {
            replicas,
            timeout,
            fetched: Instant::now(),
        });
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Picks the replica with the fewest requests in flight, skipping `excluded` ids and, while
    /// another is left, replicas marked down; ties go round-robin so that sequential requests spread
    /// evenly.
    pub(super) fn pick(&self, snapshot: &Snapshot, excluded: &[String]) -> Option<Arc<Replica>> {
        let n = snapshot.replicas.len();
        if n == 0 {
            return None;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
        let now = now_millis();
        // Ranked by (down, in flight): an up replica always beats a down one.
        let mut best: Option<(&Arc<Replica>, (bool, usize))> = None;
        for i in 0..n {
            let replica = &snapshot.replicas[(start + i) % n];
            if excluded.iter().any(|id| *id == replica.endpoint.id) {
                continue;
            }
            let rank = (replica.is_down(now), replica.inflight());
            if best.is_none_or(|(_, best_rank)| rank < best_rank) {
                best = Some((replica, rank));
            }
        }
        best.map(|(replica, _)| replica.clone())
    }
}

/// Function states by `name.namespace`.
#[derive(Debug, Default)]
pub(super) struct Functions {
    map: RwLock<HashMap<String, Arc<FunctionState>>>,
}

impl Functions {
    /// The state of `key` if it exists.
    pub(super) fn cached(&self, key: &str) -> Option<Arc<FunctionState>> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// The state of `key`, created when missing.
    pub(super) fn get(&self, key: &str) -> Arc<FunctionState> {
        if let Some(state) = self.map.read().unwrap_or_else(|e| e.into_inner()).get(key) {
            return state.clone();
        }
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    pub(super) fn remove(&self, key: &str) {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(n: usize) -> Vec<Endpoint> {
        (0..n)
            .map(|i| Endpoint::new(format!("r{i}"), format!("127.0.0.1:{}", 9000 + i)))
            .collect()
    }

    #[test]
    fn sequential_picks_rotate() {
        let state = FunctionState::default();
        let snap = state.store(endpoints(3), Duration::from_secs(1)).unwrap();
        let mut counts = HashMap::new();
        for _ in 0..300 {
            let r = state.pick(&snap, &[]).unwrap();
            *counts.entry(r.endpoint.id.clone()).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 3);
        assert!(counts.values().all(|&c| c == 100), "{counts:?}");
    }

    #[test]
    fn least_inflight_wins_and_exclusion_applies() {
        let state = FunctionState::default();
        let snap = state.store(endpoints(3), Duration::from_secs(1)).unwrap();
        let _busy0 = InflightGuard::new(snap.replicas[0].clone());
        let _busy1 = InflightGuard::new(snap.replicas[1].clone());
        for _ in 0..10 {
            assert_eq!(state.pick(&snap, &[]).unwrap().endpoint.id, "r2");
        }
        let picked = state.pick(&snap, &["r2".to_owned()]).unwrap();
        assert_ne!(picked.endpoint.id, "r2");
        let all: Vec<String> = (0..3).map(|i| format!("r{i}")).collect();
        assert!(state.pick(&snap, &all).is_none());
    }

    #[test]
    fn down_replicas_are_avoided_while_others_are_left() {
        let state = FunctionState::default();
        let snap = state.store(endpoints(2), Duration::from_secs(1)).unwrap();
        snap.replicas[0].mark_down(Duration::from_secs(60));
        for _ in 0..10 {
            assert_eq!(state.pick(&snap, &[]).unwrap().endpoint.id, "r1");
        }
        assert_eq!(
            state.pick(&snap, &["r1".to_owned()]).unwrap().endpoint.id,
            "r0"
        );
    }

    #[test]
    fn refresh_keeps_inflight_counts() {
        let state = FunctionState::default();
        let snap = state.store(endpoints(2), Duration::from_secs(1)).unwrap();
        let guard = InflightGuard::new(snap.replicas[1].clone());
        let snap2 = state.store(endpoints(3), Duration::from_secs(1)).unwrap();
        assert_eq!(snap2.replicas[1].inflight(), 1);
        drop(guard);
        assert_eq!(snap2.replicas[1].inflight(), 0);
    }

    #[test]
    fn bad_authority_is_a_backend_error() {
        let state = FunctionState::default();
        let err = state
            .store(
                vec![Endpoint::new("x", "not a host")],
                Duration::from_secs(1),
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
    }
}
