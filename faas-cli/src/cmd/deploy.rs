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
