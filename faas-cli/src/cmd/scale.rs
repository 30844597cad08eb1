//! `faas scale NAME --replicas N`: set a function's replica count.

use clap::Args;

use crate::Result;
use crate::cli::GatewayArgs;

/// Arguments of `faas scale`.
#[derive(Debug, Clone, Args)]
pub struct ScaleArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// The function.
    pub name: String,
    /// The replica count (0 allowed).
    #[arg(short, long)]
    pub replicas: u64,
}

/// Runs `faas scale`.
///
/// # Errors
/// When the gateway cannot be reached, the function does not exist (404) or the count is refused.
pub async fn run(args: ScaleArgs) -> Result<()> {
    let client = args.gateway.client(None)?;
    client
        .scale(&args.name, args.gateway.namespace(), args.replicas)
        .await?;
    super::print(&format!(
        "scaled {} to {} replicas\n",
        args.name, args.replicas
    ))
}
