//! Pure mapping between OpenFaaS deployments and Swarm service specs, both ways.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigProtocolEnum, EndpointPortConfigPublishModeEnum,
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, Mount, MountType,
    NetworkAttachmentConfig, ResourceObject, Service, ServiceSpec, ServiceSpecMode,
    ServiceSpecModeReplicated, ServiceSpecRollbackConfig, ServiceSpecRollbackConfigOrderEnum,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, TaskSpec, TaskSpecContainerSpec, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecSecrets, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use chrono::{DateTime, Utc};
use faas_core::model::{FunctionDeployment, FunctionResources, FunctionStatus, LABEL_FUNCTION};

use crate::config::{EndpointMode, SwarmConfig};
use crate::error::{Error, Result};

/// OpenFaaS's faas-swarm marker: `function=true` on every function service.
pub(crate) const LABEL_FUNCTION_MARKER: &str = "function";
/// The namespace a service or secret belongs to.
pub(crate) const LABEL_NAMESPACE: &str = "com.openfaas.namespace";
/// Annotations are stored as service labels under this prefix (as faas-swarm does).
pub(crate) const ANNOTATION_PREFIX: &str = "com.openfaas.annotations.";
/// The logical name of a secret (its Docker name changes on every rotation).
pub(crate) const LABEL_SECRET: &str = "com.openfaas.secret";
/// Marks what faas-rs created (networks, secrets), so that cleanup never touches anything else.
pub(crate) const LABEL_MANAGED: &str = "com.faas-rs.managed";
/// The environment variable the watchdog runs.
pub(crate) const ENV_FPROCESS: &str = "fprocess";
use faas_core::model::{ENV_FUNCTION_NAME, ENV_NAMESPACE};
/// Where secrets are mounted in a function's container.
pub(crate) const SECRETS_DIR: &str = "/var/openfaas/secrets";

/// A Docker secret a deployment refers to, resolved from its logical name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SecretRef {
    /// The logical (OpenFaaS) name: the file name under [`SECRETS_DIR`].
    pub(crate) name: String,
    /// The Docker secret id.
    pub(crate) id: String,
    /// The Docker secret name (the logical name, plus a revision suffix after a rotation).
    pub(crate) docker_name: String,
}

/// Builds the service spec of a deployment with `replicas` replicas.
///
/// `secrets` are the deployment's secrets, resolved in its order.
///
/// # Errors
/// [`Error::Invalid`] when limits, requests or constraints cannot be expressed on Swarm.
pub(crate) fn service_spec(
    deployment: &FunctionDeployment,
    namespace: &str,
    replicas: u64,
    secrets: &[SecretRef],
    config: &SwarmConfig,
) -> Result<ServiceSpec> {
    let name = deployment.service.clone();
    let mut labels: HashMap<String, String> = HashMap::new();
    for (key, value) in deployment.labels.iter().flatten() {
        labels.insert(key.clone(), value.clone());
    }
    for (key, value) in deployment.annotations.iter().flatten() {
        labels.insert(format!("{ANNOTATION_PREFIX}{key}"), value.clone());
    }
    labels.insert(LABEL_FUNCTION.to_owned(), name.clone());
    labels.insert(LABEL_FUNCTION_MARKER.to_owned(), "true".to_owned());
    labels.insert(LABEL_NAMESPACE.to_owned(), namespace.to_owned());

    let mut env: Vec<String> = Vec::with_capacity(deployment.env_vars.len() + 1);
    if let Some(process) = &deployment.env_process {
        env.push(format!("{ENV_FPROCESS}={process}"));
    }
    for (key, value) in &deployment.env_vars {
        if key == ENV_FPROCESS && deployment.env_process.is_some() {
            continue;
        }
        env.push(format!("{key}={value}"));
    }
    for (key, value) in [
        (ENV_FUNCTION_NAME, name.as_str()),
        (ENV_NAMESPACE, namespace),
    ] {
        if !deployment.env_vars.contains_key(key) {
            env.push(format!("{key}={value}"));
        }
    }

    for (i, constraint) in deployment.constraints.iter().enumerate() {
        check_constraint(&format!("constraints[{i}]"), constraint)?;
    }

    let limits = match &deployment.limits {
        Some(r) => Some(Limit {
            nano_cpus: parse_cpu("limits.cpu", &r.cpu)?,
            memory_bytes: parse_memory("limits.memory", &r.memory)?,
            pids: None,
        }),
        None => None,
    };
    let reservations = match &deployment.requests {
        Some(r) => Some(ResourceObject {
            nano_cpus: parse_cpu("requests.cpu", &r.cpu)?,
            memory_bytes: parse_memory("requests.memory", &r.memory)?,
            generic_resources: None,
        }),
        None => None,
    };

    let secret_refs = secrets
        .iter()
        .map(|s| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(format!("{SECRETS_DIR}/{}", s.name)),
                uid: Some("0".to_owned()),
                gid: Some("0".to_owned()),
                mode: Some(0o444),
            }),
            secret_id: Some(s.id.clone()),
            secret_name: Some(s.docker_name.clone()),
        })
        .collect::<Vec<_>>();

    let mounts = deployment.read_only_root_filesystem.then(|| {
        vec![Mount {
            target: Some("/tmp".to_owned()),
            typ: Some(MountType::TMPFS),
            ..Default::default()
        }]
    });

    let ports = config.resolution.publishes_ports().then(|| {
        vec![EndpointPortConfig {
            name: None,
            protocol: Some(EndpointPortConfigProtocolEnum::TCP),
            target_port: Some(i64::from(config.function_port)),
            // unset: Docker picks a free port on the node for every task
            published_port: None,
            publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
        }]
    });

    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
    Ok(ServiceSpec {
        name: Some(name),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(deployment.image.clone()),
                env: Some(env),
                read_only: Some(deployment.read_only_root_filesystem),
                mounts,
                secrets: (!secret_refs.is_empty()).then_some(secret_refs),
                stop_grace_period: Some(nanos(config.stop_grace_period)),
                // the test is the image's own HEALTHCHECK (`fwatchdog healthcheck`); only its
                // timing is set here, so a new replica is ready in about one interval
                health_check: Some(HealthConfig {
                    test: None,
                    interval: Some(nanos(config.health_interval)),
                    timeout: Some(nanos(
                        config
                            .health_interval
                            .max(std::time::Duration::from_secs(2)),
                    )),
                    retries: Some(3),
                    start_period: None,
                    start_interval: None,
                }),
                ..Default::default()
            }),
            resources: (limits.is_some() || reservations.is_some()).then_some(TaskSpecResources {
                limits,
                reservations,
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(config.restart_delay)),
                max_attempts: None,
                window: None,
            }),
            placement: (!deployment.constraints.is_empty()).then(|| TaskSpecPlacement {
                constraints: Some(deployment.constraints.clone()),
                ..Default::default()
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(config.network.clone()),
                aliases: None,
                driver_opts: None,
            }]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::try_from(replicas).unwrap_or(i64::MAX)),
            }),
            ..Default::default()
        }),
        // start the new replica (and wait for its healthcheck) before stopping an old one
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(nanos(std::time::Duration::from_secs(5))),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(1),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
            ..Default::default()
        }),
        networks: None,
        endpoint_spec: Some(EndpointSpec {
            mode: Some(match config.endpoint_mode {
                EndpointMode::Dnsrr => EndpointSpecModeEnum::DNSRR,
                EndpointMode::Vip => EndpointSpecModeEnum::VIP,
            }),
            ports,
        }),
    })
}

/// Whether a service is a function of `namespace` (only those are listed and managed).
pub(crate) fn is_function_of(service: &Service, namespace: &str) -> bool {
    let Some(labels) = service.spec.as_ref().and_then(|s| s.labels.as_ref()) else {
        return false;
    };
    labels.contains_key(LABEL_FUNCTION)
        && labels
            .get(LABEL_NAMESPACE)
            .map_or(namespace == faas_core::model::DEFAULT_NAMESPACE, |ns| {
                ns == namespace
            })
}

/// The desired replica count of a replicated service.
pub(crate) fn desired_replicas(service: &Service) -> u64 {
    service
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .map_or(0, |r| u64::try_from(r).unwrap_or(0))
}

/// The status of a function service with `available` ready replicas.
pub(crate) fn function_status(
    service: &Service,
    namespace: &str,
    available: u64,
) -> FunctionStatus {
    let spec = service.spec.clone().unwrap_or_default();
    let container = spec
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.clone())
        .unwrap_or_default();
    let task = spec.task_template.clone().unwrap_or_default();

    let mut deployment = FunctionDeployment::new(
        spec.name.clone().unwrap_or_default(),
        strip_digest(container.image.as_deref().unwrap_or_default()),
    );
    for entry in container.env.iter().flatten() {
        let (key, value) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        let platform = match key {
            ENV_FUNCTION_NAME => spec.name.as_deref(),
            ENV_NAMESPACE => Some(namespace),
            _ => None,
        };
        if key == ENV_FPROCESS {
            deployment.env_process = Some(value.to_owned());
        } else if platform == Some(value) {
            // Set by the provider (service_spec), not by the deployment.
        } else {
            deployment.env_vars.insert(key.to_owned(), value.to_owned());
        }
    }
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    for (key, value) in spec.labels.iter().flatten() {
        if let Some(annotation) = key.strip_prefix(ANNOTATION_PREFIX) {
            annotations.insert(annotation.to_owned(), value.clone());
        } else if key != LABEL_FUNCTION_MARKER && key != LABEL_NAMESPACE {
            labels.insert(key.clone(), value.clone());
        }
    }
    deployment.labels = Some(labels);
    deployment.annotations = (!annotations.is_empty()).then_some(annotations);
    deployment.constraints = task
        .placement
        .and_then(|p| p.constraints)
        .unwrap_or_default();
    deployment.secrets = container
        .secrets
        .iter()
        .flatten()
        .filter_map(secret_logical_name)
        .collect();
    if let Some(resources) = task.resources {
        deployment.limits = resources
            .limits
            .and_then(|l| resources_of(l.nano_cpus, l.memory_bytes));
        deployment.requests = resources
            .reservations
            .and_then(|r| resources_of(r.nano_cpus, r.memory_bytes));
    }
    deployment.read_only_root_filesystem = container.read_only.unwrap_or(false);

    let created_at = service
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc));
    let replicas = desired_replicas(service);
    let mut status = FunctionStatus::from_deployment(&deployment, namespace, replicas, created_at);
    // during a start-first update old and new replicas both run: report at most the desired count
    status.available_replicas = available.min(replicas);
    status
}

/// The logical name of a mounted secret: its file name under [`SECRETS_DIR`], else its Docker
/// name (a secret mounted by hand).
fn secret_logical_name(secret: &TaskSpecContainerSpecSecrets) -> Option<String> {
    let file = secret.file.as_ref().and_then(|f| f.name.as_deref());
    match file {
        Some(path) => Some(path.rsplit('/').next().unwrap_or(path).to_owned()),
        None => secret.secret_name.clone(),
    }
}

/// Swarm pins images to a digest (`image:tag@sha256:...`) when it can resolve one; the function's
/// image is what was deployed.
fn strip_digest(image: &str) -> String {
    image
        .split_once('@')
        .map_or(image, |(name, _)| name)
        .to_owned()
}

fn resources_of(nano_cpus: Option<i64>, memory_bytes: Option<i64>) -> Option<FunctionResources> {
    let cpu = nano_cpus
        .filter(|n| *n > 0)
        .map(format_cpu)
        .unwrap_or_default();
    let memory = memory_bytes
        .filter(|b| *b > 0)
        .map(format_memory)
        .unwrap_or_default();
    (!cpu.is_empty() || !memory.is_empty()).then_some(FunctionResources { memory, cpu })
}

/// Parses a CPU quantity into nano CPUs: cores (`"0.5"`, `"2"`) or millicores (`"500m"`).
///
/// # Errors
/// [`Error::Invalid`] blaming `field` when the value is not a positive quantity.
pub(crate) fn parse_cpu(field: &str, value: &str) -> Result<Option<i64>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Error::invalid(
            field,
            format!("cpu {value:?} must be cores (\"0.5\") or millicores (\"500m\")"),
        )
    };
    let cores = match value.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().map_err(|_| bad())? / 1000.0,
        None => value.parse::<f64>().map_err(|_| bad())?,
    };
    if !cores.is_finite() || cores <= 0.0 || cores > 1e6 {
        return Err(bad());
    }
    Ok(Some((cores * 1e9).round() as i64))
}

/// Parses a memory quantity into bytes.
///
/// Accepts Kubernetes' binary suffixes (`Ki`, `Mi`, `Gi`, `Ti`), Docker's suffixes as faas-swarm
/// did (`k`, `m`, `g`, `t`, optionally followed by `b`, case-insensitive, powers of 1024: `"128m"`
/// is 128 MiB), and plain bytes.
///
/// # Errors
/// [`Error::Invalid`] blaming `field` when the value is not a positive quantity.
pub(crate) fn parse_memory(field: &str, value: &str) -> Result<Option<i64>> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Error::invalid(
            field,
            format!("memory {value:?} must be a size like \"128Mi\", \"128m\" or \"1Gi\""),
        )
    };
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let factor: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = number * factor;
    if !bytes.is_finite() || !(1.0..=9.0e18).contains(&bytes) {
        return Err(bad());
    }
    Ok(Some(bytes.round() as i64))
}

fn format_cpu(nano: i64) -> String {
    let cores = nano as f64 / 1e9;
    format!("{cores}")
}

fn format_memory(bytes: i64) -> String {
    const UNITS: [(&str, i64); 4] = [
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes % size == 0 {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Checks a placement constraint has Swarm's shape: `<attribute> == <value>` or `!=`.
fn check_constraint(field: &str, constraint: &str) -> Result<()> {
    let (key, value) = constraint
        .split_once("==")
        .or_else(|| constraint.split_once("!="))
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!("constraint {constraint:?} must be `<attribute> == <value>` or `<attribute> != <value>`"),
            )
        })?;
    if key.trim().is_empty() || value.trim().is_empty() {
        return Err(Error::invalid(
            field,
            format!("constraint {constraint:?} has an empty side"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Resolution;

    fn deployment() -> FunctionDeployment {
        let mut d = FunctionDeployment::new("echo", "faas-rs/echo:dev")
            .with_env_process("cat")
            .with_env("write_debug", "true")
            .with_label("com.openfaas.scale.min", "2")
            .with_annotation("topic", "orders")
            .with_secret("api-key");
        d.constraints = vec!["node.platform.arch==armv7l".into()];
        d.limits = Some(FunctionResources {
            memory: "128Mi".into(),
            cpu: "0.5".into(),
        });
        d.requests = Some(FunctionResources {
            memory: "64m".into(),
            cpu: "100m".into(),
        });
        d.read_only_root_filesystem = true;
        d
    }

    fn secret() -> SecretRef {
        SecretRef {
            name: "api-key".into(),
            id: "sec1".into(),
            docker_name: "api-key".into(),
        }
    }

    #[test]
    fn deployment_becomes_a_service_spec() {
        let config = SwarmConfig::default();
        let spec = service_spec(&deployment(), "openfaas-fn", 2, &[secret()], &config).unwrap();
        let labels = spec.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_FUNCTION], "echo");
        assert_eq!(labels[LABEL_FUNCTION_MARKER], "true");
        assert_eq!(labels["com.openfaas.annotations.topic"], "orders");
        let task = spec.task_template.as_ref().unwrap();
        let container = task.container_spec.as_ref().unwrap();
        assert_eq!(
            container.env.as_deref().unwrap(),
            [
                "fprocess=cat",
                "write_debug=true",
                "OPENFAAS_NAME=echo",
                "OPENFAAS_NAMESPACE=openfaas-fn"
            ]
        );
        assert_eq!(container.read_only, Some(true));
        assert_eq!(
            container.mounts.as_ref().unwrap()[0].target.as_deref(),
            Some("/tmp")
        );
        let mounted = &container.secrets.as_ref().unwrap()[0];
        assert_eq!(
            mounted.file.as_ref().unwrap().name.as_deref(),
            Some("/var/openfaas/secrets/api-key")
        );
        let resources = task.resources.as_ref().unwrap();
        assert_eq!(
            resources.limits.as_ref().unwrap().memory_bytes,
            Some(128 << 20)
        );
        assert_eq!(
            resources.limits.as_ref().unwrap().nano_cpus,
            Some(500_000_000)
        );
        assert_eq!(
            resources.reservations.as_ref().unwrap().memory_bytes,
            Some(64 << 20)
        );
        assert_eq!(
            resources.reservations.as_ref().unwrap().nano_cpus,
            Some(100_000_000)
        );
        assert_eq!(
            task.placement
                .as_ref()
                .unwrap()
                .constraints
                .as_deref()
                .unwrap(),
            ["node.platform.arch==armv7l"]
        );
        assert_eq!(spec.mode.unwrap().replicated.unwrap().replicas, Some(2));
        let update = spec.update_config.unwrap();
        assert_eq!(
            update.order,
            Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
        );
        let endpoint = spec.endpoint_spec.unwrap();
        assert_eq!(endpoint.mode, Some(EndpointSpecModeEnum::DNSRR));
        let port = &endpoint.ports.unwrap()[0];
        assert_eq!(
            port.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::HOST)
        );
        assert_eq!(port.target_port, Some(8080));
        assert_eq!(port.published_port, None);
    }

    #[test]
    fn tasks_resolution_publishes_nothing() {
        let config = SwarmConfig::default().resolution(Resolution::TaskAddresses);
        let spec = service_spec(&deployment(), "openfaas-fn", 1, &[secret()], &config).unwrap();
        assert_eq!(spec.endpoint_spec.unwrap().ports, None);
    }

    #[test]
    fn spec_round_trips_into_a_status() {
        let config = SwarmConfig::default();
        let d = deployment();
        let spec = service_spec(&d, "openfaas-fn", 2, &[secret()], &config).unwrap();
        let service = Service {
            spec: Some(spec),
            created_at: Some("2026-11-23T11:14:04.657511491Z".into()),
            ..Default::default()
        };
        assert!(is_function_of(&service, "openfaas-fn"));
        assert!(!is_function_of(&service, "other"));
        let status = function_status(&service, "openfaas-fn", 1);
        assert_eq!(status.name, "echo");
        assert_eq!(status.image, "faas-rs/echo:dev");
        assert_eq!(status.env_process.as_deref(), Some("cat"));
        assert_eq!(status.env_vars, d.env_vars);
        assert_eq!(status.label("com.openfaas.scale.min"), Some("2"));
        assert_eq!(status.label(LABEL_FUNCTION), Some("echo"));
        assert_eq!(status.annotation("topic"), Some("orders"));
        assert_eq!(status.secrets, ["api-key"]);
        assert_eq!(status.constraints, d.constraints);
        assert_eq!(status.limits, d.limits);
        assert_eq!(
            status.requests,
            Some(FunctionResources {
                memory: "64Mi".into(),
                cpu: "0.1".into()
            })
        );
        assert!(status.read_only_root_filesystem);
        assert_eq!((status.replicas, status.available_replicas), (2, 1));
        assert_eq!(status.created_at.timestamp(), 1_795_432_444);
    }

    #[test]
    fn recorded_service_maps_to_a_status() {
        // `docker service create` of a function by hand, as faas-swarm users did, read back
        let service: Service =
            serde_json::from_str(include_str!("../tests/data/service.json")).unwrap();
        assert!(is_function_of(&service, "openfaas-fn"));
        let status = function_status(&service, "openfaas-fn", 2);
        assert_eq!(status.name, "rec");
        assert_eq!(status.image, "faas-rs/fwatchdog:dev");
        assert_eq!(status.env_process.as_deref(), Some("cat"));
        assert_eq!(
            status.env_vars.get("write_debug").map(String::as_str),
            Some("true")
        );
        assert_eq!(status.annotation("topic"), Some("orders"));
        assert_eq!(status.label("com.openfaas.scale.min"), Some("1"));
        assert_eq!(status.label(LABEL_FUNCTION_MARKER), None);
        assert_eq!(status.secrets, ["rec-key"]);
        assert_eq!(status.constraints, ["node.role==manager"]);
        assert_eq!(
            status.limits,
            Some(FunctionResources {
                memory: "128Mi".into(),
                cpu: "0.5".into()
            })
        );
        assert_eq!(
            status.requests,
            Some(FunctionResources {
                memory: "64Mi".into(),
                cpu: "0.1".into()
            })
        );
        assert!(status.read_only_root_filesystem);
        assert_eq!((status.replicas, status.available_replicas), (2, 2));
        assert_eq!(
            status.created_at.to_rfc3339(),
            "2026-11-23T11:53:34.112449712+00:00"
        );
    }

    #[test]
    fn bad_resources_and_constraints_blame_their_field() {
        let config = SwarmConfig::default();
        let mut d = deployment();
        d.limits = Some(FunctionResources {
            memory: "lots".into(),
            cpu: String::new(),
        });
        let err = service_spec(&d, "openfaas-fn", 1, &[], &config).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "limits.memory"),
            "{err:?}"
        );
        let mut d = deployment();
        d.requests = Some(FunctionResources {
            memory: String::new(),
            cpu: "-1".into(),
        });
        let err = service_spec(&d, "openfaas-fn", 1, &[], &config).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "requests.cpu"),
            "{err:?}"
        );
        let mut d = deployment();
        d.constraints = vec!["node.role==manager".into(), "armv7l".into()];
        let err = service_spec(&d, "openfaas-fn", 1, &[], &config).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { ref field, .. } if field == "constraints[1]"),
            "{err:?}"
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_memory("m", "128Mi").unwrap(), Some(128 << 20));
        assert_eq!(parse_memory("m", "128m").unwrap(), Some(128 << 20));
        assert_eq!(parse_memory("m", "1Gi").unwrap(), Some(1 << 30));
        assert_eq!(parse_memory("m", "512KB").unwrap(), Some(512 << 10));
        assert_eq!(parse_memory("m", "4096").unwrap(), Some(4096));
        assert_eq!(parse_memory("m", "").unwrap(), None);
        assert!(parse_memory("m", "12Q").is_err());
        assert!(parse_memory("m", "0").is_err());
        assert_eq!(parse_cpu("c", "0.5").unwrap(), Some(500_000_000));
        assert_eq!(parse_cpu("c", "250m").unwrap(), Some(250_000_000));
        assert_eq!(parse_cpu("c", "2").unwrap(), Some(2_000_000_000));
        assert!(parse_cpu("c", "0").is_err());
        assert!(parse_cpu("c", "one").is_err());
        assert_eq!(format_cpu(2_000_000_000), "2");
        assert_eq!(format_cpu(1_500_000_000), "1.5");
        assert_eq!(format_memory(3 << 30), "3Gi");
        assert_eq!(format_memory(1000), "1000");
    }
}
