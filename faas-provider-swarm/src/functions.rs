//! Functions as Swarm services: finding them, deploying, updating, scaling, listing and deleting.

use std::collections::HashMap;

use bollard::models::Service;
use bollard::query_parameters::ListServicesOptions;
use faas_core::model::{FunctionDeployment, FunctionStatus, LABEL_FUNCTION};
use tracing::debug;

use crate::error::{Error, Result};
use crate::provider::SwarmProvider;
use crate::raw::RawService;
use crate::spec::{desired_replicas, function_status, is_function_of, service_spec};
use crate::tasks::{Task, ready_by_service};
use crate::update::{replace_spec, set_replicas};

impl SwarmProvider {
    /// The service of function `name` as the engine answered it, with bollard's (read-only) view
    /// of it, if it is a function of `namespace`.
    pub(crate) async fn raw_service(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<(RawService, Service)> {
        let not_found = || Error::FunctionNotFound {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
        };
        let raw = match self.inner.engine.raw.service(name).await {
            Ok(raw) => raw,
            Err(e) if e.docker_status() == Some(404) => return Err(not_found()),
            Err(e) => return Err(e),
        };
        let service = raw.typed()?;
        // inspect also matches id prefixes: insist on the exact name
        if is_function_of(&service, namespace)
            && service.spec.as_ref().and_then(|s| s.name.as_deref()) == Some(name)
        {
            Ok((raw, service))
        } else {
            Err(not_found())
        }
    }

    /// The service of function `name`, if it is one of ours.
    pub(crate) async fn service(&self, name: &str, namespace: &str) -> Result<Service> {
        self.raw_service(name, namespace)
            .await
            .map(|(_, service)| service)
    }

    /// The function services of a namespace.
    pub(crate) async fn function_services(&self, namespace: &str) -> Result<Vec<Service>> {
        let filters = HashMap::from([("label".to_owned(), vec![LABEL_FUNCTION.to_owned()])]);
        let services = self
            .inner
            .engine
            .docker
            .list_services(Some(ListServicesOptions {
                filters: Some(filters),
                status: None,
            }))
            .await?;
        Ok(services
            .into_iter()
            .filter(|s| is_function_of(s, namespace))
            .collect())
    }

    /// The tasks meant to run, of one service or of all.
    pub(crate) async fn running_tasks(&self, service_id: Option<&str>) -> Result<Vec<Task>> {
        let mut filters = vec![("desired-state", "running")];
        if let Some(id) = service_id {
            filters.push(("service", id));
        }
        self.inner.engine.raw.tasks(&filters).await
    }

    /// Rejects what Swarm cannot express (limits, constraints) before anything is touched.
    fn check_expressible(&self, deployment: &FunctionDeployment, namespace: &str) -> Result<()> {
        service_spec(deployment, namespace, 1, &[], &self.inner.config).map(drop)
    }

    pub(crate) async fn deploy_function(
        &self,
        deployment: &FunctionDeployment,
        namespace: &str,
    ) -> Result<()> {
        self.check_expressible(deployment, namespace)?;
        let secrets = self.resolve_secrets(deployment, namespace).await?;
        let replicas = u64::from(deployment.initial_replicas());
        let spec = service_spec(
            deployment,
            namespace,
            replicas,
            &secrets,
            &self.inner.config,
        )?;
        match self.inner.engine.docker.create_service(spec, None).await {
            Ok(response) => {
                debug!(function = %deployment.service, id = ?response.id, "deployed");
                Ok(())
            }
            Err(e) => {
                let err = Error::from(e);
                if err.kind() == faas_core::ErrorKind::AlreadyExists {
                    return Err(Error::FunctionExists(deployment.service.clone()));
                }
                Err(err)
            }
        }
    }

    pub(crate) async fn update_function(
        &self,
        deployment: &FunctionDeployment,
        namespace: &str,
    ) -> Result<()> {
        self.check_expressible(deployment, namespace)?;
        // not found before bad secrets, as for every other call on an unknown function
        self.service(&deployment.service, namespace).await?;
        let secrets = self.resolve_secrets(deployment, namespace).await?;
        let config = &self.inner.config;
        self.update_service(&deployment.service, namespace, |service, spec| {
            let new = service_spec(
                deployment,
                namespace,
                desired_replicas(service),
                &secrets,
                config,
            )?;
            replace_spec(spec, &new)
        })
        .await
    }

    pub(crate) async fn delete_function(&self, name: &str, namespace: &str) -> Result<()> {
        let service = self.service(name, namespace).await?;
        let id = service.id.unwrap_or_else(|| name.to_owned());
        match self.inner.engine.docker.delete_service(&id).await {
            Ok(()) => Ok(()),
            Err(e) if Error::status_of(&e) == Some(404) => Err(Error::FunctionNotFound {
                name: name.to_owned(),
                namespace: namespace.to_owned(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn list_functions(&self, namespace: &str) -> Result<Vec<FunctionStatus>> {
        let services = self.function_services(namespace).await?;
        if services.is_empty() {
            return Ok(Vec::new());
        }
        let tasks = self.running_tasks(None).await?;
        let ready = ready_by_service(&tasks);
        let mut list: Vec<FunctionStatus> = services
            .iter()
            .map(|s| {
                let available = ready
                    .get(s.id.as_deref().unwrap_or_default())
                    .copied()
                    .unwrap_or(0);
                function_status(s, namespace, available)
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    pub(crate) async fn function_status(
        &self,
        name: &str,
        namespace: &str,
    ) -> Result<FunctionStatus> {
        let service = self.service(name, namespace).await?;
        let id = service.id.as_deref().unwrap_or_default();
        let tasks = self.running_tasks(Some(id)).await?;
        let ready = ready_by_service(&tasks).get(id).copied().unwrap_or(0);
        Ok(function_status(&service, namespace, ready))
    }

    /// Sets the replica count and nothing else: the running replicas keep running.
    pub(crate) async fn scale_function(
        &self,
        name: &str,
        namespace: &str,
        replicas: u32,
    ) -> Result<()> {
        self.update_service(name, namespace, |_, spec| {
            set_replicas(spec, u64::from(replicas));
            Ok(())
        })
        .await
    }
}
