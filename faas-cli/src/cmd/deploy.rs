//! `faas deploy`: deploy functions from a stack file or from flags, as faas-cli does (PUT, then POST
//! when the function does not exist; `--replace` removes and creates; `--update=false` only creates).

use std::path::Path;

use clap::Args;
use faas_core::model::FunctionDeployment;

use crate::cli::{FunctionFilter, GatewayArgs, StackFileArgs, parse_key_value};
use crate::client::{DeployOutcome, GatewayClient};
use crate::{Error, Result};

/// Arguments of `faas deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The stack file whose functions to deploy [default: ./stack.yml or ./stack.yaml, when
    /// --name is not given].
    #[command(flatten)]
    pub stack: StackFileArgs,
    /// With a stack file: which of its functions.
    #[command(flatten)]
    pub select: FunctionFilter,
    /// The function's name (deploys one function from flags, without a stack file).
    #[arg(long, conflicts_with = "file")]
    pub name: Option<String>,
    /// The image (on the local provider: a directory used as the working directory).
    #[arg(long, conflicts_with = "file")]
    pub image: Option<String>,
    /// The process the watchdog runs.
    #[arg(long, conflicts_with = "file")]
    pub fprocess: Option<String>,
    /// An environment variable, KEY=VALUE (repeatable; overrides the stack file's).
    #[arg(short = 'e', long = "env", value_parser = parse_key_value)]
    pub env: Vec<(String, String)>,
    /// A label, KEY=VALUE (repeatable).
    #[arg(short = 'l', long = "label", value_parser = parse_key_value)]
    pub labels: Vec<(String, String)>,
    /// An annotation, KEY=VALUE (repeatable).
    #[arg(long = "annotation", value_parser = parse_key_value)]
    pub annotations: Vec<(String, String)>,
    /// A secret to give the function (repeatable).
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
    /// A placement constraint (repeatable).
    #[arg(long = "constraint")]
    pub constraints: Vec<String>,
    /// Mount the root filesystem read-only.
    #[arg(long = "readonly", visible_alias = "readonly-root-filesystem")]
    pub readonly: bool,
    /// Update a function that exists (PUT, a rolling update); --update=false only creates, and
    /// fails for a function that exists.
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub update: Option<bool>,
    /// Remove a function that exists, then create it anew (instead of a rolling update).
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value = "false",
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub replace: bool,
}

/// How a function that may exist is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// PUT, then POST when it does not exist (faas-cli's default, `--update`).
    Update,
    /// DELETE (when it exists), then POST (`--replace`).
    Replace,
    /// POST only (`--update=false`).
    Create,
}

impl DeployArgs {
    /// The deployments these arguments describe, and the stack file's gateway: the stack file's
    /// functions (filtered), or the one of the flags; flags (`--env`, `--label`...) are applied
    /// to each. Without `--name` or `-f`, `stack.yml` (or `stack.yaml`) in `dir` is the stack file.
    ///
    /// # Errors
    /// [`Error::Stack`] for an invalid stack file, [`Error::InvalidArgument`] for a filter that
    /// selects nothing or when there is neither a stack file nor `--name`.
    pub fn deployments_in(&self, dir: &Path) -> Result<(Vec<FunctionDeployment>, Option<String>)> {
        let stack = if self.name.is_some() {
            None
        } else {
            self.stack.load_or_default(dir)?
        };
        let (mut deployments, stack_gateway) = match stack {
            Some((path, stack)) => {
                let names = self
                    .select
                    .select(stack.functions.keys().map(String::as_str), &path)?;
                let deployments = stack
                    .deployments()?
                    .into_iter()
                    .filter(|d| names.contains(&d.service))
                    .collect();
                (deployments, stack.provider.gateway.clone())
            }
            None if self.select.is_set() => {
                return Err(Error::InvalidArgument(
                    "--filter and --regex select functions of a stack file: pass -f FILE".into(),
                ));
            }
            None => {
                let name = self.name.clone().ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "nothing to deploy: pass -f FILE, --name NAME --image IMAGE, or run in a \
                         directory with {}",
                        crate::cli::DEFAULT_STACK_FILES.join(" or ")
                    ))
                })?;
                let mut d = FunctionDeployment::new(name, self.image.clone().unwrap_or_default());
                d.env_process = self.fprocess.clone();
                (vec![d], None)
            }
        };
        for d in &mut deployments {
            if let Some(ns) = self.gateway.namespace() {
                d.namespace = Some(ns.to_owned());
            }
            d.env_vars.extend(self.env.iter().cloned());
            if !self.labels.is_empty() {
                d.labels
                    .get_or_insert_with(Default::default)
                    .extend(self.labels.iter().cloned());
            }
            if !self.annotations.is_empty() {
                d.annotations
                    .get_or_insert_with(Default::default)
                    .extend(self.annotations.iter().cloned());
            }
            for secret in &self.secrets {
                if !d.secrets.contains(secret) {
                    d.secrets.push(secret.clone());
                }
            }
            d.constraints.extend(self.constraints.iter().cloned());
            d.read_only_root_filesystem |= self.readonly;
        }
        Ok((deployments, stack_gateway))
    }

    /// [`DeployArgs::deployments_in`] the current directory.
    ///
    /// # Errors
    /// As [`DeployArgs::deployments_in`].
    pub fn deployments(&self) -> Result<(Vec<FunctionDeployment>, Option<String>)> {
        self.deployments_in(Path::new("."))
    }

    fn mode(&self) -> Result<Mode> {
        match (self.update, self.replace) {
            (Some(true), true) => Err(Error::InvalidArgument(
                "--update and --replace exclude each other: --replace removes and re-creates a \
                 function, --update rolls it to the new configuration"
                    .into(),
            )),
            (_, true) => Ok(Mode::Replace),
            (Some(false), false) => Ok(Mode::Create),
            (_, false) => Ok(Mode::Update),
        }
    }
}

async fn deploy_one(
    client: &GatewayClient,
    mode: Mode,
    d: &FunctionDeployment,
) -> Result<DeployOutcome> {
    match mode {
        Mode::Update => client.deploy(d).await,
        Mode::Create => client.create(d).await.map(|()| DeployOutcome::Created),
        Mode::Replace => {
            match client.remove(&d.service, d.namespace.as_deref()).await {
                Ok(()) | Err(Error::Status { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
            client.create(d).await.map(|()| DeployOutcome::Replaced)
        }
    }
}

/// Runs `faas deploy`: every function is tried; the command fails when any failed.
///
/// # Errors
/// The failure of a single deployment; with several, each failure is reported on stderr and the
/// error counts them.
pub async fn run(args: DeployArgs) -> Result<()> {
    let mode = args.mode()?;
    let (deployments, stack_gateway) = args.deployments()?;
    let client = args.gateway.client(stack_gateway.as_deref())?;
    let mut failed = 0;
    for d in &deployments {
        match deploy_one(&client, mode, d).await {
            Ok(outcome) => {
                let verb = match outcome {
                    DeployOutcome::Updated => "updated",
                    DeployOutcome::Created => "created",
                    DeployOutcome::Replaced => "replaced",
                };
                let url = client.function_url(&d.service, d.namespace.as_deref());
                super::print(&format!("deployed {} ({verb}): {url}\n", d.service))?;
            }
            // The gateway is down: trying the other functions would only repeat the same line.
            Err(e @ (Error::Unreachable { .. } | Error::Unauthorized { .. })) => return Err(e),
            Err(e) if deployments.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("error: deploying {}: {}", d.service, e.one_line());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Error::InvalidArgument(format!(
            "{failed} of {} functions failed to deploy",
            deployments.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        deploy: DeployArgs,
    }

    fn args(argv: &[&str]) -> DeployArgs {
        let mut full = vec!["deploy", "--gateway", "http://127.0.0.1:1"];
        full.extend_from_slice(argv);
        Args::try_parse_from(full).unwrap().deploy
    }

    #[test]
    fn flags_describe_one_deployment() {
        let a = args(&[
            "--name",
            "f",
            "--image",
            "img",
            "--fprocess",
            "cat",
            "-e",
            "a=1",
            "-l",
            "k=v",
            "--annotation",
            "topic=t",
            "--secret",
            "s",
            "--secret",
            "s",
            "-n",
            "dev",
        ]);
        let (ds, gateway) = a.deployments().unwrap();
        assert_eq!(gateway, None);
        assert_eq!(a.mode().unwrap(), Mode::Update);
        let d = &ds[0];
        assert_eq!((d.service.as_str(), d.image.as_str()), ("f", "img"));
        assert_eq!(d.env_process.as_deref(), Some("cat"));
        assert_eq!(d.env_vars["a"], "1");
        assert_eq!(d.label("k"), Some("v"));
        assert_eq!(d.annotation("topic"), Some("t"));
        assert_eq!(d.secrets, ["s"]);
        assert_eq!(d.namespace.as_deref(), Some("dev"));
    }

    #[test]
    fn stack_files_are_filtered_and_flags_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        std::fs::write(
            &stack,
            "provider:\n  gateway: http://gw:8080\nfunctions:\n  a:\n    image: x\n    fprocess: cat\n    \
             environment:\n      v: stack\n  b:\n    image: y\n    fprocess: wc\n",
        )
        .unwrap();
        let path = stack.to_str().unwrap();
        let (ds, gateway) = args(&["-f", path, "--env", "v=flag"])
            .deployments()
            .unwrap();
        assert_eq!(gateway.as_deref(), Some("http://gw:8080"));
        assert_eq!(
            ds.iter().map(|d| d.service.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(ds[0].env_vars["v"], "flag");
        let (ds, _) = args(&["-f", path, "--filter", "b"]).deployments().unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].service, "b");
        assert!(
            args(&["-f", path, "--filter", "nope"])
                .deployments()
                .is_err()
        );
        let (ds, _) = args(&["-f", path, "--regex", "^a$"]).deployments().unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].service, "a");
        // -f and --name exclude each other; without either, the directory's stack.yml is used
        assert!(Args::try_parse_from(["deploy", "-f", path, "--name", "x"]).is_err());
        let (ds, gateway) = args(&[]).deployments_in(dir.path()).unwrap();
        assert_eq!(ds.len(), 2);
        assert_eq!(gateway.as_deref(), Some("http://gw:8080"));
        let empty = tempfile::tempdir().unwrap();
        let err = args(&[]).deployments_in(empty.path()).unwrap_err();
        assert!(err.to_string().contains("stack.yml"), "{err}");
        assert!(
            args(&["--filter", "a"])
                .deployments_in(empty.path())
                .is_err()
        );
    }

    #[test]
    fn update_and_replace_choose_how_an_existing_function_is_deployed() {
        let mode = |argv: &[&str]| {
            let mut full = vec!["--name", "f", "--image", "x"];
            full.extend_from_slice(argv);
            args(&full).mode()
        };
        assert_eq!(mode(&[]).unwrap(), Mode::Update);
        assert_eq!(mode(&["--update"]).unwrap(), Mode::Update);
        assert_eq!(mode(&["--update=false"]).unwrap(), Mode::Create);
        assert_eq!(mode(&["--replace"]).unwrap(), Mode::Replace);
        assert_eq!(
            mode(&["--replace=true", "--update=false"]).unwrap(),
            Mode::Replace
        );
        assert!(mode(&["--replace", "--update=true"]).is_err());
        // faas-cli's spelling and ours
        assert!(args(&["--name", "f", "--readonly"]).readonly);
        assert!(args(&["--name", "f", "--readonly-root-filesystem"]).readonly);
    }

    #[test]
    fn envsubst_off_keeps_references() {
        let dir = tempfile::tempdir().unwrap();
        let stack = dir.path().join("stack.yml");
        std::fs::write(
            &stack,
            "functions:\n  a:\n    image: x\n    environment:\n      v: ${FAAS_CLI_TEST_UNSET_VAR:-d}\n",
        )
        .unwrap();
        let path = stack.to_str().unwrap();
        let (ds, _) = args(&["-f", path]).deployments().unwrap();
        assert_eq!(ds[0].env_vars["v"], "d");
        let (ds, _) = args(&["-f", path, "--envsubst=false"])
            .deployments()
            .unwrap();
        assert_eq!(ds[0].env_vars["v"], "${FAAS_CLI_TEST_UNSET_VAR:-d}");
    }
}
