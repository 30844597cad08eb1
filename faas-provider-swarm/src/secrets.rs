//! OpenFaaS secrets as Docker secrets.
//!
//! A secret created through faas-rs is a Docker secret labelled with its logical name
//! (`com.openfaas.secret`) and namespace. Docker secrets are immutable, so an update creates a new
//! revision (`<name>.<suffix>`), points every function mounting the old one at it (a rolling update
//! of those functions, as the mounted file changes) and removes the old revision. A deployment may
//! also mount a Docker secret created by hand (`docker secret create`), as on faas-swarm.

use std::collections::HashMap;

use base64::Engine as _;
use bollard::models::{Secret as DockerSecret, SecretSpec};
use bollard::query_parameters::ListSecretsOptions;
use faas_core::model::{FunctionDeployment, Secret, SecretInfo};
use tracing::warn;

use crate::error::{Error, Result};
use crate::provider::SwarmProvider;
use crate::spec::{LABEL_MANAGED, LABEL_NAMESPACE, LABEL_SECRET, SecretRef};
use crate::update::repoint_secrets;

impl SwarmProvider {
    pub(crate) async fn list_secrets(&self, namespace: &str) -> Result<Vec<SecretInfo>> {
        let secrets = self.labelled_secrets(LABEL_SECRET, namespace).await?;
        let mut names: Vec<String> = secrets
            .iter()
            .filter_map(|s| s.spec.as_ref()?.labels.as_ref()?.get(LABEL_SECRET).cloned())
            .collect();
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|name| SecretInfo {
                name,
                namespace: namespace.to_owned(),
            })
            .collect())
    }

    pub(crate) async fn create_managed_secret(
        &self,
        secret: &Secret,
        namespace: &str,
    ) -> Result<()> {
        if !self
            .managed_secrets(&secret.name, namespace)
            .await?
            .is_empty()
        {
            return Err(Error::SecretExists(secret.name.clone()));
        }
        let spec = secret_spec(secret.name.clone(), secret, namespace);
        match self.inner.engine.docker.create_secret(spec).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = Error::from(e);
                if err.kind() == faas_core::ErrorKind::AlreadyExists {
                    return Err(Error::SecretExists(secret.name.clone()));
                }
                Err(err)
            }
        }
    }

    /// Creates a new revision of the secret, moves the functions that mount the old one to it
    /// (changing only that reference in their spec) and removes the old revisions.
    pub(crate) async fn rotate_secret(&self, secret: &Secret, namespace: &str) -> Result<()> {
        let old = self.managed_secrets(&secret.name, namespace).await?;
        if old.is_empty() {
            return Err(Error::SecretNotFound(secret.name.clone()));
        }
        let docker_name = revision_name(&secret.name);
        let spec = secret_spec(docker_name.clone(), secret, namespace);
        let new_id = self.inner.engine.docker.create_secret(spec).await?.id;
        let old_ids: Vec<String> = old.iter().filter_map(|s| s.id.clone()).collect();
        for service in self.function_services(namespace).await? {
            let uses_old = service
                .spec
                .as_ref()
                .and_then(|s| s.task_template.as_ref())
                .and_then(|t| t.container_spec.as_ref())
                .and_then(|c| c.secrets.as_ref())
                .is_some_and(|refs| {
                    refs.iter()
                        .any(|r| r.secret_id.as_ref().is_some_and(|id| old_ids.contains(id)))
                });
            if !uses_old {
                continue;
            }
            let name = service.spec.and_then(|s| s.name).unwrap_or_default();
            self.update_service(&name, namespace, |_, spec| {
                repoint_secrets(spec, &old_ids, &new_id, &docker_name);
                Ok(())
            })
            .await?;
        }
        for id in &old_ids {
            match self.inner.engine.docker.delete_secret(id).await {
                Ok(()) => {}
                Err(e) if Error::status_of(&e) == Some(404) => {}
                Err(e) => {
                    warn!(secret = %secret.name, id, error = %e, "could not remove an old secret revision")
                }
            }
        }
        Ok(())
    }

    pub(crate) async fn delete_managed_secret(&self, name: &str, namespace: &str) -> Result<()> {
        let secrets = self.managed_secrets(name, namespace).await?;
        if secrets.is_empty() {
            return Err(Error::SecretNotFound(name.to_owned()));
        }
        for secret in secrets {
            let id = secret.id.unwrap_or_default();
            match self.inner.engine.docker.delete_secret(&id).await {
                Ok(()) => {}
                Err(e) if Error::status_of(&e) == Some(404) => {}
                Err(e) => {
                    let err = Error::from(e);
                    if let Error::Docker { message, .. } = &err
                        && message.contains("in use")
                    {
                        let services = message
                            .rsplit(':')
                            .next()
                            .unwrap_or_default()
                            .trim()
                            .to_owned();
                        return Err(Error::SecretInUse {
                            name: name.to_owned(),
                            services,
                        });
                    }
                    return Err(err);
                }
            }
        }
        Ok(())
    }

    /// The managed Docker secrets of logical secret `name`, newest first.
    async fn managed_secrets(&self, name: &str, namespace: &str) -> Result<Vec<DockerSecret>> {
        let mut secrets = self
            .labelled_secrets(&format!("{LABEL_SECRET}={name}"), namespace)
            .await?;
        secrets.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Ok(secrets)
    }

    /// The Docker secrets of `namespace` matching a label filter (`key` or `key=value`).
    async fn labelled_secrets(&self, label: &str, namespace: &str) -> Result<Vec<DockerSecret>> {
        let filters = HashMap::from([("label".to_owned(), vec![label.to_owned()])]);
        let mut secrets = self
            .inner
            .engine
            .docker
            .list_secrets(Some(ListSecretsOptions {
                filters: Some(filters),
            }))
            .await?;
        secrets.retain(|s| secret_namespace(s) == Some(namespace));
        Ok(secrets)
    }

    /// Resolves the secrets a deployment mounts: a secret created through faas-rs, else a Docker
    /// secret of that exact name (created with `docker secret create`, as on faas-swarm).
    pub(crate) async fn resolve_secrets(
        &self,
        deployment: &FunctionDeployment,
        namespace: &str,
    ) -> Result<Vec<SecretRef>> {
        let mut resolved = Vec::with_capacity(deployment.secrets.len());
        for (i, name) in deployment.secrets.iter().enumerate() {
            let managed = self.managed_secrets(name, namespace).await?;
            let found = match managed.into_iter().next() {
                Some(secret) => Some(secret),
                None => match self.inner.engine.docker.inspect_secret(name).await {
                    Ok(secret)
                        if secret.spec.as_ref().and_then(|s| s.name.as_deref())
                            == Some(name.as_str()) =>
                    {
                        Some(secret)
                    }
                    Ok(_) => None,
                    Err(e) if Error::status_of(&e) == Some(404) => None,
                    Err(e) => return Err(e.into()),
                },
            };
            let secret = found.ok_or_else(|| {
                Error::invalid(
                    format!("secrets[{i}]"),
                    format!("secret {name} does not exist: create it first"),
                )
            })?;
            resolved.push(SecretRef {
                name: name.clone(),
                id: secret.id.unwrap_or_default(),
                docker_name: secret.spec.and_then(|s| s.name).unwrap_or_default(),
            });
        }
        Ok(resolved)
    }
}

fn secret_spec(docker_name: String, secret: &Secret, namespace: &str) -> SecretSpec {
    SecretSpec {
        name: Some(docker_name),
        labels: Some(HashMap::from([
            (LABEL_SECRET.to_owned(), secret.name.clone()),
            (LABEL_NAMESPACE.to_owned(), namespace.to_owned()),
            (LABEL_MANAGED.to_owned(), "true".to_owned()),
        ])),
        data: Some(base64::engine::general_purpose::STANDARD.encode(secret.bytes())),
        ..Default::default()
    }
}

fn secret_namespace(secret: &DockerSecret) -> Option<&str> {
    secret
        .spec
        .as_ref()?
        .labels
        .as_ref()?
        .get(LABEL_NAMESPACE)
        .map(String::as_str)
}

/// A Docker secret name for a new revision of `name` (at most 64 characters, Docker's limit).
fn revision_name(name: &str) -> String {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let keep = name.len().min(64 - suffix.len() - 1);
    format!("{}.{suffix}", &name[..keep])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_names_fit_docker() {
        let name = revision_name("api-key");
        assert!(name.starts_with("api-key."));
        assert_eq!(name.len(), "api-key.".len() + 10);
        assert!(revision_name(&"a".repeat(80)).len() <= 64);
        assert_ne!(revision_name("x"), revision_name("x"));
    }

    #[test]
    fn secret_specs_carry_the_logical_name_and_the_value() {
        let secret = Secret::new("api-key", "s3cret");
        let spec = secret_spec("api-key.0123456789".into(), &secret, "openfaas-fn");
        assert_eq!(spec.name.as_deref(), Some("api-key.0123456789"));
        let labels = spec.labels.unwrap();
        assert_eq!(labels[LABEL_SECRET], "api-key");
        assert_eq!(labels[LABEL_NAMESPACE], "openfaas-fn");
        assert_eq!(labels[LABEL_MANAGED], "true");
        let data = base64::engine::general_purpose::STANDARD
            .decode(spec.data.unwrap())
            .unwrap();
        assert_eq!(data, b"s3cret");
    }
}
