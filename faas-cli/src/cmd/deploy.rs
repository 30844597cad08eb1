//! `faas deploy`: deploy functions from a stack file or from flags, as faas-cli does (PUT, then POST
//! when the function does not exist).

use std::path::PathBuf;

use clap::Args;
use faas_core::model::FunctionDeployment;

use crate::cli::{GatewayArgs, parse_key_value};
use crate::client::DeployOutcome;
use crate::stack::Stack;
use crate::{Error, Result};

/// Arguments of `faas deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// A stack file (stack.yml) whose functions to deploy.
    #[arg(short = 'f', long = "yaml", visible_alias = "file", conflicts_with_all = ["name", "image", "fprocess"])]
    pub file: Option<PathBuf>,
    /// With -f: deploy only this function of the stack file (repeatable).
    #[arg(long, requires = "file")]
    pub filter: Vec<String>,
    /// The function's name (without -f).
    #[arg(long, required_unless_present = "file")]
    pub name: Option<String>,
    /// The image (on the local provider: a directory used as the working directory).
    #[arg(long)]
    pub image: Option<String>,
    /// The process the watchdog runs.
    #[arg(long)]
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
    #[arg(long)]
    pub readonly_root_filesystem: bool,
}

impl DeployArgs {
    /// The deployments these arguments describe: the stack file's (filtered), or the one of the flags;
    /// flags (`--env`, `--label`...) are applied to each.
    ///
    /// # Errors
    /// [`Error::Stack`] for an invalid stack file, [`Error::InvalidArgument`] for an unknown `--filter`.
    pub fn deployments(&self) -> Result<(Vec<FunctionDeployment>, Option<String>)> {
        let (mut deployments, stack_gateway) = match &self.file {
            Some(path) => {
                let stack = Stack::from_file(path)?;
                for name in &self.filter {
                    if !stack.functions.contains_key(name) {
                        return Err(Error::InvalidArgument(format!(
                            "no function {name:?} in {}",
                            path.display()
                        )));
                    }
                }
                let deployments = stack
                    .deployments()?
                    .into_iter()
                    .filter(|d| self.filter.is_empty() || self.filter.contains(&d.service))
                    .collect();
                (deployments, stack.provider.gateway.clone())
            }
            None => {
                let name = self.name.clone().unwrap_or_default();
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
            d.read_only_root_filesystem |= self.readonly_root_filesystem;
        }
        Ok((deployments, stack_gateway))
    }
}

/// Runs `faas deploy`: every function is tried; the command fails when any failed.
///
/// # Errors
/// The failure of a single deployment; with several, each failure is reported on stderr and the
/// error counts them.
pub async fn run(args: DeployArgs) -> Result<()> {
    let (deployments, stack_gateway) = args.deployments()?;
    let client = args.gateway.client(stack_gateway.as_deref())?;
    let mut failed = 0;
    for d in &deployments {
        match client.deploy(d).await {
            Ok(outcome) => {
                let verb = match outcome {
                    DeployOutcome::Updated => "updated",
                    DeployOutcome::Created => "created",
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
        // -f and --name exclude each other; one of them is required.
        assert!(Args::try_parse_from(["deploy", "-f", path, "--name", "x"]).is_err());
        assert!(Args::try_parse_from(["deploy"]).is_err());
    }
}
