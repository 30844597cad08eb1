//! `faas remove NAME...`: remove functions.

use std::path::PathBuf;

use clap::Args;

use crate::cli::GatewayArgs;
use crate::stack::Stack;
use crate::{Error, Result};

/// Arguments of `faas remove`.
#[derive(Debug, Clone, Args)]
pub struct RemoveArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The functions to remove.
    #[arg(required_unless_present = "file")]
    pub names: Vec<String>,
    /// Remove every function of this stack file.
    #[arg(short = 'f', long = "yaml", visible_alias = "file")]
    pub file: Option<PathBuf>,
}

/// Runs `faas remove`.
///
/// # Errors
/// When the gateway cannot be reached, or a function does not exist (404).
pub async fn run(args: RemoveArgs) -> Result<()> {
    let mut names = args.names.clone();
    let mut stack_gateway = None;
    if let Some(path) = &args.file {
        let stack = Stack::from_file(path)?;
        names.extend(stack.functions.keys().cloned());
        stack_gateway = stack.provider.gateway;
    }
    let client = args.gateway.client(stack_gateway.as_deref())?;
    let mut failed = 0;
    for name in &names {
        match client.remove(name, args.gateway.namespace()).await {
            Ok(()) => super::print(&format!("removed {name}\n"))?,
            Err(e @ (Error::Unreachable { .. } | Error::Unauthorized { .. })) => return Err(e),
            Err(e) if names.len() == 1 => return Err(e),
            Err(e) => {
                eprintln!("error: {}", e.one_line());
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(Error::InvalidArgument(format!(
            "{failed} of {} functions could not be removed",
            names.len()
        )));
    }
    Ok(())
}
