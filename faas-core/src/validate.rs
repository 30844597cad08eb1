//! Validation of names and requests. Every check names the field to blame, so the gateway can answer
//! 400 with `{"error": .., "field": ..}` before anything is created.

use std::fmt;

use crate::model::{
    FunctionDeployment, LABEL_SCALE_MAX, LABEL_SCALE_MIN, MAX_REPLICAS, ScaleServiceRequest, Secret,
};
use crate::{Error, Result};

/// A function name: a DNS-1123 label (lowercase letters, digits and `-`, starting and ending with
/// an alphanumeric character, at most 63 characters).
///
/// ```
/// use faas_core::validate::FunctionName;
/// assert!(FunctionName::new("hello-world").is_ok());
/// assert!(FunctionName::new("Hello").is_err());
/// assert!(FunctionName::new("-x").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FunctionName(String);

impl FunctionName {
    /// Validates `name`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the field `service`.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        check_dns1123_label(&name, "service", "function name")?;
        Ok(FunctionName(name))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for FunctionName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A namespace: a DNS-1123 label, like a function name.
///
/// ```
/// use faas_core::validate::Namespace;
/// assert!(Namespace::new("openfaas-fn").is_ok());
/// assert!(Namespace::new("Prod_1").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    /// Validates `namespace`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming the field `namespace`.
    pub fn new(namespace: impl Into<String>) -> Result<Self> {
        let namespace = namespace.into();
        check_dns1123_label(&namespace, "namespace", "namespace")?;
        Ok(Namespace(namespace))
    }

    /// The namespace.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Namespace {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

fn check_dns1123_label(value: &str, field: &str, what: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, format!("{what} is required")));
    }
    if value.len() > 63 {
        return Err(Error::invalid(
            field,
            format!("{what} {value:?} is longer than 63 characters"),
        ));
    }
    let bytes = value.as_bytes();
    let ok_char = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-';
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.iter().all(ok_char) || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return Err(Error::invalid(
            field,
            format!(
                "{what} {value:?} must be a DNS-1123 label: lowercase letters, digits and '-', \
                 starting and ending with a letter or digit"
            ),
        ));
    }
    Ok(())
}

/// Checks an environment variable name: a letter or `_` then letters, digits, `_`, `.` or `-`
/// (the characters Kubernetes and Docker accept), no `=`.
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming `envVars.<name>`.
pub fn check_env_name(name: &str) -> Result<()> {
    let field = format!("envVars.{name}");
    let valid = !name.is_empty()
        && name.len() <= 256
        && name.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphabetic()
                || b == b'_'
                || (i > 0 && (b.is_ascii_digit() || b == b'.' || b == b'-'))
        });
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "environment variable name {name:?} must start with a letter or '_' and hold only letters, digits, '_', '.' or '-'"
            ),
        ))
    }
}

/// Checks a label or annotation key as Kubernetes does: an optional DNS subdomain prefix of at most
/// 253 characters and `/`, then a name of at most 63 characters of alphanumerics, `-`, `_` and `.`,
/// starting and ending with an alphanumeric.
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming `<map>.<key>`.
pub fn check_label_key(map: &str, key: &str) -> Result<()> {
    let field = format!("{map}.{key}");
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric();
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.')
                .all(|part| check_dns1123_label(part, "", "").is_ok())
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "{map} key {key:?} is not a valid key: an optional DNS prefix and '/', then at most 63 letters, digits, '-', '_' or '.'"
            ),
        ))
    }
}

/// Checks a secret name: lowercase letters, digits, `-`, `.`, `_`, at most 253 characters, starting
/// and ending with a letter or digit (valid as a file name, a Docker secret and a Kubernetes secret).
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming `field`.
pub fn check_secret_name(field: &str, name: &str) -> Result<()> {
    let b = name.as_bytes();
    let valid = !b.is_empty()
        && b.len() <= 253
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'_')
        })
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!(
                "secret name {name:?} must be lowercase letters, digits, '-', '.' or '_', starting and ending with a letter or digit"
            ),
        ))
    }
}

/// Checks a replica count against [`MAX_REPLICAS`].
///
/// # Errors
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming `field`.
pub fn check_replicas(field: &str, replicas: u64) -> Result<u32> {
    if replicas > u64::from(MAX_REPLICAS) {
        return Err(Error::invalid(
            field,
            format!("replicas must be at most {MAX_REPLICAS}, got {replicas}"),
        ));
    }
    Ok(replicas as u32)
}

/// Validates a deployment: name, namespace, image or envProcess presence is the provider's business
/// (the local provider needs `envProcess`, the others `image`); here: names, env vars, labels,
/// annotations, secrets, scaling labels.
///
/// # Errors
/// The first problem found, naming its field.
pub fn validate_deployment(d: &FunctionDeployment) -> Result<()> {
    FunctionName::new(d.service.as_str())?;
    if let Some(ns) = d.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        Namespace::new(ns)?;
    }
    if d.image.trim().is_empty() {
        return Err(Error::invalid("image", "image is required"));
    }
    if d.image.chars().any(char::is_whitespace) {
        return Err(Error::invalid(
            "image",
            format!("image {:?} must not contain whitespace", d.image),
        ));
    }
    if d.env_process.as_deref().is_some_and(|p| p.contains('\0')) {
        return Err(Error::invalid(
            "envProcess",
            "envProcess must not contain NUL bytes",
        ));
    }
    for (name, value) in &d.env_vars {
        check_env_name(name)?;
        if value.contains('\0') {
            return Err(Error::invalid(
                format!("envVars.{name}"),
                "value must not contain NUL bytes",
            ));
        }
    }
    if let Some(labels) = &d.labels {
        for key in labels.keys() {
            check_label_key("labels", key)?;
        }
        let parse = |key: &str| -> Result<Option<u64>> {
            match labels.get(key) {
                None => Ok(None),
                Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                    Error::invalid(
                        format!("labels.{key}"),
                        format!("{key} must be a whole number, got {v:?}"),
                    )
                }),
            }
        };
        let min = parse(LABEL_SCALE_MIN)?;
        let max = parse(LABEL_SCALE_MAX)?;
        if let Some(min) = min {
            check_replicas(&format!("labels.{LABEL_SCALE_MIN}"), min)?;
        }
        if let Some(max) = max {
            check_replicas(&format!("labels.{LABEL_SCALE_MAX}"), max)?;
        }
        if let (Some(min), Some(max)) = (min, max)
            && min > max
        {
            return Err(Error::invalid(
                format!("labels.{LABEL_SCALE_MIN}"),
                format!("{LABEL_SCALE_MIN} ({min}) is greater than {LABEL_SCALE_MAX} ({max})"),
            ));
        }
    }
    if let Some(annotations) = &d.annotations {
        for key in annotations.keys() {
            check_label_key("annotations", key)?;
        }
    }
    for (i, secret) in d.secrets.iter().enumerate() {
        check_secret_name(&format!("secrets[{i}]"), secret)?;
    }
    if let Some(t) = d.env_vars.get(crate::model::ENV_EXEC_TIMEOUT) {
        crate::model::parse_duration(t).map_err(|e| {
            Error::invalid(format!("envVars.{}", crate::model::ENV_EXEC_TIMEOUT), e)
        })?;
    }
    Ok(())
}

/// Validates a scale request and returns the replica count.
///
/// # Errors
/// `replicas` over [`MAX_REPLICAS`].
pub fn validate_scale(req: &ScaleServiceRequest) -> Result<u32> {
    check_replicas("replicas", req.replicas)
}

/// Validates a secret to create or update: its name, its namespace, and that it has a value.
///
/// # Errors
/// The first problem found, naming its field.
pub fn validate_secret(secret: &Secret) -> Result<()> {
    check_secret_name("name", &secret.name)?;
    if !secret.namespace.is_empty() {
        Namespace::new(secret.namespace.as_str())?;
    }
    if secret.value.is_empty() && secret.raw_value.is_empty() {
        return Err(Error::invalid(
            "value",
            "secret value is empty: set value or rawValue",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_labels() {
        for ok in ["a", "echo", "hello-world-2", &"a".repeat(63)] {
            assert!(FunctionName::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Echo",
            "-echo",
            "echo-",
            "echo_1",
            "ech o",
            "é",
            &"a".repeat(64),
        ] {
            let err = FunctionName::new(bad).unwrap_err();
            assert_eq!(err.field(), Some("service"), "{bad}");
        }
        assert_eq!(
            Namespace::new("BAD").unwrap_err().field(),
            Some("namespace")
        );
    }

    #[test]
    fn env_names() {
        for ok in ["fprocess", "_x", "A1", "write_debug", "a.b-c"] {
            assert!(check_env_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1A", "A=B", "A B", "-x"] {
            assert!(check_env_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_keys() {
        for ok in [
            "com.openfaas.scale.min",
            "app",
            "example.com/tier",
            "a_b-c.d",
        ] {
            assert!(check_label_key("labels", ok).is_ok(), "{ok}");
        }
        for bad in ["", "/x", "x/", "Bad Prefix/x", "-x", &"a".repeat(64)] {
            let err = check_label_key("labels", bad).unwrap_err();
            assert_eq!(err.field(), Some(format!("labels.{bad}").as_str()));
        }
    }

    #[test]
    fn deployments() {
        let good = FunctionDeployment::new("echo", "alpine").with_env_process("cat");
        validate_deployment(&good).unwrap();
        let err = validate_deployment(&FunctionDeployment::new("echo", "")).unwrap_err();
        assert_eq!(err.field(), Some("image"));
        let err = validate_deployment(&good.clone().with_env("1x", "y")).unwrap_err();
        assert_eq!(err.field(), Some("envVars.1x"));
        let err = validate_deployment(&good.clone().with_namespace("Bad")).unwrap_err();
        assert_eq!(err.field(), Some("namespace"));
        let err = validate_deployment(
            &good
                .clone()
                .with_label(LABEL_SCALE_MIN, "3")
                .with_label(LABEL_SCALE_MAX, "2"),
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("labels.com.openfaas.scale.min"));
        let err =
            validate_deployment(&good.clone().with_label(LABEL_SCALE_MAX, "5000")).unwrap_err();
        assert_eq!(err.field(), Some("labels.com.openfaas.scale.max"));
        let err = validate_deployment(&good.clone().with_secret("Bad Secret")).unwrap_err();
        assert_eq!(err.field(), Some("secrets[0]"));
        let err = validate_deployment(&good.clone().with_env("exec_timeout", "soon")).unwrap_err();
        assert_eq!(err.field(), Some("envVars.exec_timeout"));
    }

    #[test]
    fn scale_and_secrets() {
        let req = ScaleServiceRequest {
            service_name: "echo".into(),
            replicas: 0,
            namespace: String::new(),
        };
        assert_eq!(validate_scale(&req).unwrap(), 0);
        let req = ScaleServiceRequest {
            replicas: 1001,
            ..req
        };
        assert_eq!(validate_scale(&req).unwrap_err().field(), Some("replicas"));
        validate_secret(&Secret::new("api-key", "x")).unwrap();
        assert_eq!(
            validate_secret(&Secret::new("api-key", ""))
                .unwrap_err()
                .field(),
            Some("value")
        );
        assert_eq!(
            validate_secret(&Secret::new("API", "x"))
                .unwrap_err()
                .field(),
            Some("name")
        );
    }
}
