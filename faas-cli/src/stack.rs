//! OpenFaaS stack files (`stack.yml`), as faas-cli reads them.
//!
//! ```
//! use faas_cli::stack::Stack;
//!
//! let stack = Stack::from_yaml(
//!     r#"
//! version: 1.0
//! provider:
//!   name: openfaas
//!   gateway: http://127.0.0.1:8080
//! functions:
//!   echo:
//!     image: examples/functions/echo
//!     fprocess: cat
//! "#,
//! )
//! .unwrap();
//! let deployments = stack.deployments().unwrap();
//! assert_eq!(deployments[0].service, "echo");
//! assert_eq!(deployments[0].env_process.as_deref(), Some("cat"));
//! ```
//!
//! Before parsing, `${VAR}`, `${VAR:-default}` and `${VAR-default}` are replaced from the environment
//! as faas-cli does (`$$` gives a literal `$`); a bare `$VAR` is left as it is, so shell commands in
//! `fprocess` keep their own variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faas_core::model::{FunctionDeployment, FunctionResources};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Error, Result};

/// What is wrong with a stack file (the `source` of [`Error::Stack`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StackError {
    /// The file cannot be read.
    #[error("cannot read it")]
    Read(#[source] std::io::Error),
    /// A `${` has no closing `}`.
    #[error("unterminated ${{")]
    Unterminated,
    /// A `${...}` does not name a variable (letters, digits and `_`).
    #[error("invalid variable reference ${{{0}}}")]
    BadReference(String),
    /// The YAML is invalid or does not have a stack file's shape.
    #[error("invalid YAML")]
    Yaml(#[source] Box<serde_saphyr::Error>),
    /// A function's name is not a valid function name.
    #[error("function {name:?}: {message}")]
    FunctionName {
        /// The name in the file.
        name: String,
        /// Why it is not valid.
        message: String,
    },
    /// The function asked for is not in the file.
    #[error("no function {0:?} in the stack file")]
    NoFunction(String),
}

/// A parsed stack file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct Stack {
    /// The stack format version (`1.0`), kept as written.
    #[serde(default)]
    pub version: Option<String>,
    /// Where to deploy.
    #[serde(default, deserialize_with = "null_as_default")]
    pub provider: StackProvider,
    /// The functions, by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub functions: BTreeMap<String, StackFunction>,
    /// Directory that relative paths in the file (`environment_file`) are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// The `provider` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct StackProvider {
    /// The provider's name (`openfaas`).
    #[serde(default)]
    pub name: Option<String>,
    /// The gateway's URL.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Docker network (ignored by faas-rs, kept for compatibility).
    #[serde(default)]
    pub network: Option<String>,
}

/// CPU and memory in a stack file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct StackResources {
    /// Memory (`128Mi`).
    #[serde(default)]
    pub memory: Option<String>,
    /// CPU (`100m`, `0.5`).
    #[serde(default)]
    pub cpu: Option<String>,
}

/// One function of a stack file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[non_exhaustive]
pub struct StackFunction {
    /// Template language (used by `faas-cli build`; kept for compatibility).
    #[serde(default)]
    pub lang: Option<String>,
    /// Handler folder (used by `faas-cli build`; kept for compatibility).
    #[serde(default)]
    pub handler: Option<String>,
    /// The image; on the local provider, a directory used as the working directory.
    #[serde(default)]
    pub image: Option<String>,
    /// The process the watchdog runs.
    #[serde(default)]
    pub fprocess: Option<String>,
    /// The namespace to deploy to.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Environment variables (numbers and booleans are accepted and kept as written).
    #[serde(default, deserialize_with = "text_map")]
    pub environment: BTreeMap<String, String>,
    /// YAML files with an `environment:` map each, relative to the stack file.
    #[serde(default, deserialize_with = "null_as_default")]
    pub environment_file: Vec<String>,
    /// Labels.
    #[serde(default, deserialize_with = "opt_text_map")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations.
    #[serde(default, deserialize_with = "opt_text_map")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Secrets to mount.
    #[serde(default, deserialize_with = "null_as_default")]
    pub secrets: Vec<String>,
    /// Resource limits.
    #[serde(default)]
    pub limits: Option<StackResources>,
    /// Resource requests.
    #[serde(default)]
    pub requests: Option<StackResources>,
    /// Placement constraints.
    #[serde(default, deserialize_with = "null_as_default")]
    pub constraints: Vec<String>,
    /// Mount the root filesystem read-only.
    #[serde(default)]
    pub readonly_root_filesystem: bool,
}

/// The `environment:` map of an `environment_file`.
#[derive(Debug, Default, Deserialize)]
struct EnvironmentFile {
    #[serde(default, deserialize_with = "text_map")]
    environment: BTreeMap<String, String>,
}

/// How `${VAR}` references in a stack file are treated (faas-cli's `--envsubst`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvSubst {
    /// Replace them from the process environment (faas-cli's default).
    #[default]
    Environment,
    /// Keep the file's text as it is (`--envsubst=false`).
    Off,
}

impl Stack {
    /// Reads and parses a stack file; relative paths in it are resolved against its directory.
    ///
    /// # Errors
    /// [`Error::Stack`] when the file cannot be read, a `${VAR}` is malformed or the YAML is invalid.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_file_with(path, EnvSubst::Environment)
    }

    /// [`Stack::from_file`], with `${VAR}` references treated as `envsubst` says.
    ///
    /// # Errors
    /// As [`Stack::from_file`].
    pub fn from_file_with(path: impl AsRef<Path>, envsubst: EnvSubst) -> Result<Self> {
        let path = path.as_ref();
        let stack_err = |source| Error::Stack {
            path: path.display().to_string(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(|e| stack_err(StackError::Read(e)))?;
        let env = |name: &str| std::env::var(name).ok();
        let mut stack = match envsubst {
            EnvSubst::Environment => Self::parse(&text, &env),
            EnvSubst::Off => Self::parse_text(&text),
        }
        .map_err(stack_err)?;
        stack.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(stack)
    }

    /// Parses a stack file's text, substituting `${VAR}` from the process environment.
    ///
    /// # Errors
    /// [`Error::Stack`] when a `${VAR}` is malformed or the YAML is invalid.
    pub fn from_yaml(text: &str) -> Result<Self> {
        Self::parse(text, &|name| std::env::var(name).ok()).map_err(|source| Error::Stack {
            path: "<text>".to_owned(),
            source,
        })
    }

    fn parse(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<Self, StackError> {
        Self::parse_text(&substitute_env(text, env)?)
    }

    fn parse_text(text: &str) -> std::result::Result<Self, StackError> {
        let stack: Stack = from_yaml(text)?;
        for name in stack.functions.keys() {
            faas_core::validate::FunctionName::new(name.as_str()).map_err(|e| {
                StackError::FunctionName {
                    name: name.clone(),
                    message: e.message().to_owned(),
                }
            })?;
        }
        Ok(stack)
    }

    /// The deployments of every function, sorted by name.
    ///
    /// # Errors
    /// [`Error::Stack`] when an `environment_file` cannot be read or parsed.
    pub fn deployments(&self) -> Result<Vec<FunctionDeployment>> {
        self.functions
            .iter()
            .map(|(name, f)| f.to_deployment(name, &self.base_dir))
            .collect()
    }

    /// The deployment of one function.
    ///
    /// # Errors
    /// [`Error::Stack`] when it is not in the file or its `environment_file` is invalid.
    pub fn deployment(&self, name: &str) -> Result<FunctionDeployment> {
        let function = self.functions.get(name).ok_or_else(|| Error::Stack {
            path: self.base_dir.display().to_string(),
            source: StackError::NoFunction(name.to_owned()),
        })?;
        function.to_deployment(name, &self.base_dir)
    }
}

impl StackFunction {
    /// The deployment request for this function, named `name`; `base_dir` resolves
    /// `environment_file` paths. The `environment` map overrides the files' values, as in faas-cli.
    ///
    /// # Errors
    /// [`Error::Stack`] when an `environment_file` cannot be read or parsed.
    pub fn to_deployment(&self, name: &str, base_dir: &Path) -> Result<FunctionDeployment> {
        let mut deployment = FunctionDeployment::new(name, self.image.clone().unwrap_or_default());
        deployment.env_process = self.fprocess.clone().filter(|p| !p.is_empty());
        deployment.namespace = self.namespace.clone().filter(|n| !n.is_empty());
        for file in &self.environment_file {
            let path = base_dir.join(file);
            let stack_err = |source| Error::Stack {
                path: path.display().to_string(),
                source,
            };
            let text =
                std::fs::read_to_string(&path).map_err(|e| stack_err(StackError::Read(e)))?;
            let env: EnvironmentFile = from_yaml(&text).map_err(stack_err)?;
            deployment.env_vars.extend(env.environment);
        }
        deployment.env_vars.extend(self.environment.clone());
        deployment.labels = self.labels.clone();
        deployment.annotations = self.annotations.clone();
        deployment.secrets = self.secrets.clone();
        deployment.constraints = self.constraints.clone();
        deployment.limits = self.limits.as_ref().map(StackResources::to_model);
        deployment.requests = self.requests.as_ref().map(StackResources::to_model);
        deployment.read_only_root_filesystem = self.readonly_root_filesystem;
        Ok(deployment)
    }
}

impl StackResources {
    fn to_model(&self) -> FunctionResources {
        FunctionResources {
            memory: self.memory.clone().unwrap_or_default(),
            cpu: self.cpu.clone().unwrap_or_default(),
        }
    }
}

/// Parses YAML with serde-saphyr's defaults (parse budgets on); errors name the line and column
/// without quoting the source, so that they read as one line.
fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, StackError> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| StackError::Yaml(Box::new(e)))
}

/// Replaces `${VAR}`, `${VAR:-default}` (default when unset or empty) and `${VAR-default}` (default
/// when unset); `$$` is a literal `$`. Other `$` are kept.
fn substitute_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<String, StackError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or(StackError::Unterminated)?;
            let expr = &body[..end];
            let (name, default, empty_is_unset) = if let Some((n, d)) = expr.split_once(":-") {
                (n, Some(d), true)
            } else if let Some((n, d)) = expr.split_once('-') {
                (n, Some(d), false)
            } else {
                (expr, None, false)
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(StackError::BadReference(expr.to_owned()));
            }
            let value = match env(name) {
                Some(v) if !(empty_is_unset && v.is_empty()) => v,
                _ => default.unwrap_or_default().to_owned(),
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A present but empty section (`secrets:`) as the type's default.
fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A map of names to scalars kept as written (`true`, `3`, `10s`); an empty value is `""`.
fn opt_text_map<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<BTreeMap<String, String>>, D::Error> {
    let map = Option::<BTreeMap<String, Option<String>>>::deserialize(d)?;
    Ok(map.map(|m| {
        m.into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect()
    }))
}

fn text_map<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    Ok(opt_text_map(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Stack {
        Stack::parse(text, &|name| match name {
            "SET" => Some("value".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        })
        .unwrap()
    }

    #[test]
    fn parses_a_full_faas_cli_stack() {
        let stack = parse(
            r#"
version: 1.0
provider:
  name: openfaas
  gateway: http://127.0.0.1:8080
functions:
  nodeinfo:
    lang: node18
    handler: ./nodeinfo
    image: functions/nodeinfo:latest
    fprocess: node index.js
    namespace: staging
    environment:
      write_debug: true
      exec_timeout: 10s
      retries: 3
    labels:
      com.openfaas.scale.min: 2
    annotations:
      topic: cron-function
    secrets:
      - api-key
    limits:
      memory: 128Mi
      cpu: 0.5
    requests:
      memory: 64Mi
    constraints:
      - "node.platform.os == linux"
    readonly_root_filesystem: true
"#,
        );
        assert_eq!(stack.version.as_deref(), Some("1.0"));
        assert_eq!(
            stack.provider.gateway.as_deref(),
            Some("http://127.0.0.1:8080")
        );
        let d = stack.deployment("nodeinfo").unwrap();
        assert_eq!(d.service, "nodeinfo");
        assert_eq!(d.image, "functions/nodeinfo:latest");
        assert_eq!(d.env_process.as_deref(), Some("node index.js"));
        assert_eq!(d.namespace.as_deref(), Some("staging"));
        assert_eq!(d.env_vars["write_debug"], "true");
        assert_eq!(d.env_vars["retries"], "3");
        assert_eq!(d.initial_replicas(), 2);
        assert_eq!(d.annotation("topic"), Some("cron-function"));
        assert_eq!(d.secrets, ["api-key"]);
        assert_eq!(d.limits.as_ref().unwrap().cpu, "0.5");
        assert_eq!(d.limits.as_ref().unwrap().memory, "128Mi");
        assert_eq!(d.requests.as_ref().unwrap().memory, "64Mi");
        assert_eq!(d.constraints, ["node.platform.os == linux"]);
        assert!(d.read_only_root_filesystem);
        assert_eq!(stack.functions["nodeinfo"].lang.as_deref(), Some("node18"));
    }

    #[test]
    fn minimal_function_and_empty_sections() {
        let stack = parse(
            "functions:\n  echo:\n    image: x\n    fprocess: cat\n    labels:\n    environment:\n",
        );
        let d = stack.deployment("echo").unwrap();
        assert!(d.labels.is_none());
        assert!(d.env_vars.is_empty());
        assert!(d.namespace.is_none());
        assert!(stack.deployment("missing").is_err());
    }

    #[test]
    fn substitutes_environment_variables() {
        let stack = parse(
            "provider:\n  gateway: ${GW:-http://127.0.0.1:9999}\nfunctions:\n  f:\n    image: ${SET}\n    \
             fprocess: sh -c 'echo $HOME $$x'\n    environment:\n      a: ${EMPTY:-dflt}\n      b: ${EMPTY-dflt}\n      \
             c: \"${UNSET}\"\n",
        );
        assert_eq!(
            stack.provider.gateway.as_deref(),
            Some("http://127.0.0.1:9999")
        );
        let d = stack.deployment("f").unwrap();
        assert_eq!(d.image, "value");
        assert_eq!(d.env_process.as_deref(), Some("sh -c 'echo $HOME $x'"));
        assert_eq!(d.env_vars["a"], "dflt");
        assert_eq!(d.env_vars["b"], "");
        assert_eq!(d.env_vars["c"], "");
    }

    #[test]
    fn rejects_bad_references_names_and_yaml() {
        let env = |_: &str| None;
        let err = Stack::parse("functions: ${OOPS", &env).unwrap_err();
        assert!(matches!(err, StackError::Unterminated), "{err:?}");
        assert!(err.to_string().contains("unterminated"));
        let err = Stack::parse("a: ${no spaces}", &env).unwrap_err();
        assert!(
            matches!(&err, StackError::BadReference(r) if r == "no spaces"),
            "{err:?}"
        );
        assert!(err.to_string().contains("invalid variable"));
        let err = Stack::parse("functions:\n  Bad_Name:\n    image: x\n", &env).unwrap_err();
        assert!(matches!(&err, StackError::FunctionName { name, .. } if name == "Bad_Name"));
        assert!(err.to_string().contains("Bad_Name"), "{err}");
        for bad in [
            "functions: [1, 2]",
            "functions:\n  f:\n    environment:\n      a: [1]\n",
            "functions:\n  f:\n    image: [x\n",
        ] {
            let err = Stack::parse(bad, &env).unwrap_err();
            assert!(matches!(err, StackError::Yaml(_)), "{bad}: {err:?}");
            let cause = std::error::Error::source(&err).unwrap().to_string();
            assert!(cause.contains("line "), "{cause}");
            assert_eq!(cause.lines().count(), 1, "{cause}");
        }
    }

    #[test]
    fn alias_bombs_are_refused() {
        // nine levels of nine aliases: 9^9 nodes if expanded
        let mut text = String::from("a0: &a0 [x]\n");
        for i in 1..10 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        text.push_str("functions: {}\n");
        let err = Stack::parse(&text, &|_| None).unwrap_err();
        assert!(matches!(err, StackError::Yaml(_)), "{err:?}");
    }

    #[test]
    fn a_stack_written_as_yaml_reads_back_the_same() {
        let stack = parse(
            "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  f:\n    image: x\n    \
             environment:\n      n: 3\n      t: true\n    labels:\n      a: b\n    secrets: [s]\n",
        );
        let text = serde_saphyr::to_string(&stack).unwrap();
        assert_eq!(parse(&text), stack, "{text}");
    }

    #[test]
    fn environment_files_are_merged_under_the_function_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("env.yml"),
            "environment:\n  a: from-file\n  b: 2\n",
        )
        .unwrap();
        let stack_path = dir.path().join("stack.yml");
        std::fs::write(
            &stack_path,
            "functions:\n  f:\n    image: x\n    environment_file:\n      - env.yml\n    environment:\n      a: inline\n",
        )
        .unwrap();
        let stack = Stack::from_file(&stack_path).unwrap();
        let d = stack.deployment("f").unwrap();
        assert_eq!(d.env_vars["a"], "inline");
        assert_eq!(d.env_vars["b"], "2");

        std::fs::write(
            &stack_path,
            "functions:\n  f:\n    environment_file: [missing.yml]\n",
        )
        .unwrap();
        let err = Stack::from_file(&stack_path)
            .unwrap()
            .deployments()
            .unwrap_err();
        assert!(err.to_string().contains("missing.yml"), "{err}");
        assert!(Stack::from_file(dir.path().join("nope.yml")).is_err());
    }

    #[test]
    fn the_example_stacks_parse() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let local = Stack::from_file(examples.join("stack.yml")).unwrap();
        assert_eq!(local.deployments().unwrap().len(), 4);

        let pi = Stack::from_file(examples.join("raspberry-pi/stack.yml")).unwrap();
        let deployments = pi.deployments().unwrap();
        let by_name = |name: &str| deployments.iter().find(|d| d.service == name).unwrap();
        let arm64 = by_name("hello-arm64");
        assert_eq!(arm64.image, "faas-rs/hello:dev-arm64");
        assert_eq!(arm64.constraints, ["node.platform.arch == aarch64"]);
        assert_eq!(arm64.initial_replicas(), 1);
        let armv7 = by_name("hello-armv7");
        assert_eq!(armv7.image, "faas-rs/hello:dev-armv7");
        assert_eq!(armv7.constraints, ["node.platform.arch == armv7l"]);
        for d in &deployments {
            faas_core::validate::validate_deployment(d).unwrap();
        }
    }
}
