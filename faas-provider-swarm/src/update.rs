//! Changing a function's service: a read-modify-write of the spec as the engine's own JSON.
//!
//! The spec is read with the [raw client](crate::raw), changed where the change says (the replica
//! count, a secret reference, or the whole spec on a redeploy) and written back with the version it
//! was read at. Every field the change does not touch goes back as the engine wrote it, including
//! those bollard's models drop (the healthcheck): a scale or a secret rotation is then exactly the
//! change it means, and Swarm replaces no replica it does not have to.

use std::time::Duration;

use bollard::models::{Service, ServiceSpec};
use serde_json::Value;
use tracing::debug;

use crate::error::{Error, Result};
use crate::provider::SwarmProvider;

/// How many times a service update is retried when the service changed in between.
const UPDATE_ATTEMPTS: u64 = 8;

impl SwarmProvider {
    /// Applies `change` to the current spec of a function (the engine's JSON) and updates its
    /// service, retrying when the service changed in between (`update out of sequence`). A change
    /// that leaves the spec as it was writes nothing.
    pub(crate) async fn update_service(
        &self,
        name: &str,
        namespace: &str,
        change: impl Fn(&Service, &mut Value) -> Result<()>,
    ) -> Result<()> {
        for attempt in 0..UPDATE_ATTEMPTS {
            let (raw, service) = self.raw_service(name, namespace).await?;
            let current = raw.spec();
            let mut spec = current.clone();
            change(&service, &mut spec)?;
            if spec == current {
                return Ok(());
            }
            let id = raw.id().unwrap_or(name);
            match self
                .inner
                .engine
                .raw
                .update_service(id, raw.version(), &spec)
                .await
            {
                Ok(warnings) => {
                    for warning in warnings {
                        debug!(service = name, %warning, "docker warning");
                    }
                    return Ok(());
                }
                Err(Error::Docker { message, .. }) if message.contains("out of sequence") => {
                    debug!(
                        service = name,
                        attempt, "service changed during update, retrying"
                    );
                    tokio::time::sleep(Duration::from_millis(50 * (attempt + 1))).await;
                }
                Err(e) if e.docker_status() == Some(404) => {
                    return Err(Error::FunctionNotFound {
                        name: name.to_owned(),
                        namespace: namespace.to_owned(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::Conflict(name.to_owned()))
    }
}

/// Sets the replica count of a replicated service's spec.
pub(crate) fn set_replicas(spec: &mut Value, replicas: u64) {
    spec["Mode"]["Replicated"]["Replicas"] = Value::from(replicas);
}

/// Replaces `spec` by `new` (a redeploy), keeping what a redeploy must not change: the
/// `ForceUpdate` counter (`docker service update --force` bumps it; going back would be a change).
///
/// bollard writes the healthcheck as `HealthCheck`; it is written under the engine's own key,
/// `Healthcheck`, so that the spec reads back as it was written.
pub(crate) fn replace_spec(spec: &mut Value, new: &ServiceSpec) -> Result<()> {
    let force = spec.pointer("/TaskTemplate/ForceUpdate").cloned();
    let mut value = serde_json::to_value(new).map_err(Error::Decode)?;
    if let Some(container) = value
        .pointer_mut("/TaskTemplate/ContainerSpec")
        .and_then(Value::as_object_mut)
        && let Some(health) = container.remove("HealthCheck")
    {
        container.insert("Healthcheck".to_owned(), health);
    }
    if let Some(force) = force
        && let Some(task) = value
            .pointer_mut("/TaskTemplate")
            .and_then(Value::as_object_mut)
    {
        task.insert("ForceUpdate".to_owned(), force);
    }
    *spec = value;
    Ok(())
}

/// Points every secret reference of `spec` to one of `old_ids` at the new revision (`new_id`,
/// named `new_name`); the file it is mounted as stays. Returns whether anything changed.
pub(crate) fn repoint_secrets(
    spec: &mut Value,
    old_ids: &[String],
    new_id: &str,
    new_name: &str,
) -> bool {
    let mut changed = false;
    let refs = spec
        .pointer_mut("/TaskTemplate/ContainerSpec/Secrets")
        .and_then(Value::as_array_mut);
    for r in refs.into_iter().flatten() {
        let uses_old = r
            .get("SecretID")
            .and_then(Value::as_str)
            .is_some_and(|id| old_ids.iter().any(|old| old == id));
        if uses_old {
            r["SecretID"] = Value::from(new_id);
            r["SecretName"] = Value::from(new_name);
            changed = true;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SwarmConfig;
    use crate::spec::{SecretRef, service_spec};
    use bollard::models::TaskSpecContainerSpec;
    use faas_core::model::FunctionDeployment;

    /// The spec of a function service as Docker 20.10 answered it, healthcheck included.
    fn recorded_spec() -> Value {
        let service: Value =
            serde_json::from_str(include_str!("../tests/data/service.json")).unwrap();
        service["Spec"].clone()
    }

    #[test]
    fn bollard_drops_the_healthcheck_docker_returns() {
        // why specs are edited as JSON: bollard expects `HealthCheck`, the engine writes
        // `Healthcheck`, and a typed round trip loses it (so a write-back would change the spec)
        let spec = recorded_spec();
        let container = &spec["TaskTemplate"]["ContainerSpec"];
        assert!(container.get("Healthcheck").is_some(), "{container}");
        let typed: TaskSpecContainerSpec = serde_json::from_value(container.clone()).unwrap();
        assert_eq!(typed.health_check, None);
        let typed: ServiceSpec = serde_json::from_value(spec.clone()).unwrap();
        assert_ne!(serde_json::to_value(typed).unwrap(), spec);
    }

    #[test]
    fn scaling_changes_only_the_replica_count() {
        let before = recorded_spec();
        for replicas in [0, 1, 5] {
            let mut spec = before.clone();
            set_replicas(&mut spec, replicas);
            let mut expected = before.clone();
            *expected.pointer_mut("/Mode/Replicated/Replicas").unwrap() = Value::from(replicas);
            assert_eq!(spec, expected);
            assert_eq!(
                spec["TaskTemplate"], before["TaskTemplate"],
                "the task template (what Swarm rolls replicas for) is untouched"
            );
        }
    }

    #[test]
    fn a_spec_without_a_mode_gets_a_replicated_one() {
        // never written by faas-rs, but a service edited by hand could lack it
        let mut bare = serde_json::json!({"Name": "x"});
        set_replicas(&mut bare, 2);
        assert_eq!(bare["Mode"]["Replicated"]["Replicas"], 2);
    }

    #[test]
    fn rotation_repoints_only_the_rotated_secret() {
        let mut before = recorded_spec();
        let refs = before
            .pointer_mut("/TaskTemplate/ContainerSpec/Secrets")
            .unwrap()
            .as_array_mut()
            .unwrap();
        let mut other = refs[0].clone();
        other["SecretID"] = "otherid".into();
        other["SecretName"] = "other".into();
        other["File"]["Name"] = "/var/openfaas/secrets/other".into();
        refs.push(other);

        let mut spec = before.clone();
        let old = vec!["4qju17lp3ziy794phydoms8jz".to_owned()];
        assert!(repoint_secrets(
            &mut spec,
            &old,
            "newid",
            "rec-key.0123456789"
        ));
        let mut expected = before.clone();
        let rotated = expected
            .pointer_mut("/TaskTemplate/ContainerSpec/Secrets/0")
            .unwrap();
        rotated["SecretID"] = "newid".into();
        rotated["SecretName"] = "rec-key.0123456789".into();
        assert_eq!(spec, expected);
        assert_eq!(
            spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["File"]["Name"],
            "/var/openfaas/secrets/rec-key"
        );
        // a spec that does not mount it is left as it is
        let mut unrelated = before.clone();
        assert!(!repoint_secrets(
            &mut unrelated,
            &["nope".to_owned()],
            "n",
            "n"
        ));
        assert_eq!(unrelated, before);
    }

    #[test]
    fn a_redeploy_keeps_force_update_and_writes_dockers_healthcheck_key() {
        let mut spec = recorded_spec();
        spec["TaskTemplate"]["ForceUpdate"] = 3.into();
        let deployment = FunctionDeployment::new("rec", "faas-rs/fwatchdog:dev")
            .with_env_process("cat")
            .with_secret("rec-key");
        let secret = SecretRef {
            name: "rec-key".into(),
            id: "4qju17lp3ziy794phydoms8jz".into(),
            docker_name: "rec-key".into(),
        };
        let new = service_spec(
            &deployment,
            "openfaas-fn",
            2,
            &[secret],
            &SwarmConfig::default(),
        )
        .unwrap();
        replace_spec(&mut spec, &new).unwrap();
        assert_eq!(spec["TaskTemplate"]["ForceUpdate"], 3);
        let container = &spec["TaskTemplate"]["ContainerSpec"];
        assert!(container.get("HealthCheck").is_none(), "{container}");
        assert_eq!(container["Healthcheck"]["Interval"], 1_000_000_000);
        assert_eq!(container["Healthcheck"]["Retries"], 3);
        assert_eq!(spec["Mode"]["Replicated"]["Replicas"], 2);
        // what is written is bollard's spec, key for key apart from the healthcheck's name
        let mut written = spec.clone();
        let health = written["TaskTemplate"]["ContainerSpec"]
            .as_object_mut()
            .unwrap()
            .remove("Healthcheck")
            .unwrap();
        written["TaskTemplate"]["ContainerSpec"]["HealthCheck"] = health;
        let mut expected = serde_json::to_value(&new).unwrap();
        expected["TaskTemplate"]["ForceUpdate"] = 3.into();
        assert_eq!(written, expected);
    }
}
