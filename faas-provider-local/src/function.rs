//! One deployed function: its spec, its replicas, its logs; scaling and rolling updates.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use faas_core::model::{Endpoint, FunctionDeployment, FunctionStatus};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::logs::LogBook;
use crate::replica::{Replica, RunSpec, Settings};

/// What replicas need from the provider: settings, the root stop token and the task tracker.
#[derive(Debug, Clone)]
pub(crate) struct Runtime {
    pub(crate) settings: Arc<Settings>,
    pub(crate) root: CancellationToken,
    pub(crate) tracker: TaskTracker,
    pub(crate) rollout_timeout: Duration,
}

struct State {
    deployment: FunctionDeployment,
    spec: Arc<RunSpec>,
    generation: u64,
    desired: u32,
    created_at: DateTime<Utc>,
    /// Replicas of the current spec.
    active: Vec<Arc<Replica>>,
    /// Replicas of an older spec, serving until the rollout to the current one completes.
    retiring: Vec<Arc<Replica>>,
}

/// A deployed function.
pub(crate) struct Function {
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) logs: Arc<LogBook>,
    next_replica: AtomicU64,
    state: Mutex<State>,
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Function")
            .field("name", &self.name)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Function {
    /// A function with no replicas yet; call [`Function::scale`] to start them.
    pub(crate) fn new(
        deployment: FunctionDeployment,
        spec: Arc<RunSpec>,
        created_at: DateTime<Utc>,
        logs: Arc<LogBook>,
    ) -> Arc<Function> {
        Arc::new(Function {
            name: deployment.service.clone(),
            namespace: deployment.namespace.clone().unwrap_or_default(),
            logs,
            next_replica: AtomicU64::new(1),
            state: Mutex::new(State {
                deployment,
                spec,
                generation: 0,
                desired: 0,
                created_at,
                active: Vec::new(),
                retiring: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The deployment as last deployed or updated.
    pub(crate) fn deployment(&self) -> FunctionDeployment {
        self.state().deployment.clone()
    }

    /// When it was first deployed.
    pub(crate) fn created_at(&self) -> DateTime<Utc> {
        self.state().created_at
    }

    /// The desired replica count.
    pub(crate) fn desired(&self) -> u32 {
        self.state().desired
    }

    /// The status the API reports.
    pub(crate) fn status(&self) -> FunctionStatus {
        let state = self.state();
        let ready = state
            .active
            .iter()
            .chain(&state.retiring)
            .filter(|r| r.is_ready())
            .count() as u64;
        let desired = u64::from(state.desired);
        let mut status = FunctionStatus::from_deployment(
            &state.deployment,
            &self.namespace,
            desired,
            state.created_at,
        );
        status.available_replicas = ready.min(desired);
        status
    }

    /// The ready replicas' addresses (including replicas of the previous spec during a rollout).
    pub(crate) fn endpoints(&self) -> Vec<Endpoint> {
        let state = self.state();
        state
            .active
            .iter()
            .chain(&state.retiring)
            .filter_map(|r| r.endpoint())
            .collect()
    }

    fn start_replica(self: &Arc<Self>, rt: &Runtime, state: &State) -> Arc<Replica> {
        let n = self.next_replica.fetch_add(1, Ordering::Relaxed);
        let id: Arc<str> = Arc::from(format!("{}-{n}", self.name));
        self.logs.push(&id, format!("faas: starting replica {id}"));
        Replica::start(
            id,
            state.generation,
            state.spec.clone(),
            self.logs.clone(),
            rt.settings.clone(),
            &rt.root,
            &rt.tracker,
        )
    }

    /// Sets the desired replica count: starts replicas, or drains the surplus in the background
    /// (replicas that are not ready first, then the newest).
    pub(crate) fn scale(self: &Arc<Self>, rt: &Runtime, replicas: u32) {
        let surplus = {
            let mut state = self.state();
            state.desired = replicas;
            while state.active.len() < replicas as usize {
                let replica = self.start_replica(rt, &state);
                state.active.push(replica);
            }
            let target = replicas as usize;
            let mut surplus = if state.active.len() > target {
                // keep the ready replicas, the oldest first (`active` is in start order)
                let (mut keep, not_ready): (Vec<_>, Vec<_>) = std::mem::take(&mut state.active)
                    .into_iter()
                    .partition(|r| r.is_ready());
                keep.extend(not_ready);
                let surplus = keep.split_off(target);
                state.active = keep;
                surplus
            } else {
                Vec::new()
            };
            if replicas == 0 {
                // scaled to zero: replicas of a previous spec stop too, rollout or not
                surplus.append(&mut state.retiring);
            }
            surplus
        };
        self.drain_in_background(rt, surplus);
    }

    /// Replaces the spec and rolls the replicas over: the new replicas start, and the old ones
    /// keep serving until every new one is ready (or `rollout_timeout` passes), then drain.
    pub(crate) fn update(
        self: &Arc<Self>,
        rt: &Runtime,
        deployment: FunctionDeployment,
        spec: Arc<RunSpec>,
    ) {
        let (fresh, generation) = {
            let mut state = self.state();
            state.deployment = deployment;
            state.spec = spec;
            state.generation += 1;
            let old = std::mem::take(&mut state.active);
            state.retiring.extend(old);
            for _ in 0..state.desired {
                let replica = self.start_replica(rt, &state);
                state.active.push(replica);
            }
            (state.active.clone(), state.generation)
        };
        let function = self.clone();
        let rt2 = rt.clone();
        let timeout = rt.rollout_timeout;
        rt.tracker.spawn(async move {
            let all_settled = futures::future::join_all(fresh.iter().map(|r| r.settled()));
            tokio::select! {
                _ = tokio::time::timeout(timeout, all_settled) => {}
                () = rt2.root.cancelled() => return,
            }
            let old = {
                let mut state = function.state();
                let (old, keep) = std::mem::take(&mut state.retiring)
                    .into_iter()
                    .partition(|r| r.generation < generation);
                state.retiring = keep;
                old
            };
            function.drain_all(&rt2, old).await;
        });
    }

    fn drain_in_background(self: &Arc<Self>, rt: &Runtime, replicas: Vec<Arc<Replica>>) {
        if replicas.is_empty() {
            return;
        }
        let function = self.clone();
        let rt2 = rt.clone();
        rt.tracker
            .spawn(async move { function.drain_all(&rt2, replicas).await });
    }

    async fn drain_all(&self, rt: &Runtime, replicas: Vec<Arc<Replica>>) {
        let settings = &rt.settings;
        futures::future::join_all(replicas.iter().map(|r| async move {
            self.logs
                .push(&r.id, format!("faas: draining replica {}", r.id));
            r.drain(settings.drain_grace, settings.drain_timeout).await;
        }))
        .await;
    }

    /// Drains every replica (the function is deleted or the provider shuts down) and ends log
    /// followers when `close_logs`.
    pub(crate) async fn stop(&self, rt: &Runtime, grace: bool, close_logs: bool) {
        let replicas = {
            let mut state = self.state();
            let mut all = std::mem::take(&mut state.active);
            all.append(&mut state.retiring);
            all
        };
        let settings = &rt.settings;
        let grace = if grace {
            settings.drain_grace
        } else {
            Duration::ZERO
        };
        futures::future::join_all(
            replicas
                .iter()
                .map(|r| r.drain(grace, settings.drain_timeout)),
        )
        .await;
        if close_logs {
            self.logs.close();
        }
    }
}
