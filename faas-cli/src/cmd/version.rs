//! `faas version`: this client's version and, when it answers, the gateway's.

use clap::Args;

use crate::Result;
use crate::cli::GatewayArgs;

/// Arguments of `faas version`.
#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Print only this client's version, without asking the gateway.
    #[arg(long)]
    pub short_version: bool,
}

/// Runs `faas version`. An unreachable gateway is a warning, not a failure: the client's version is
/// still printed.
///
/// # Errors
/// Only when stdout cannot be written or the gateway URL is invalid.
pub async fn run(args: VersionArgs) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    if args.short_version {
        return super::print(&format!("{version}\n"));
    }
    super::print(&format!("faas CLI\n  version: {version}\n"))?;
    let client = args.gateway.client(None)?;
    match client.info().await {
        Ok(info) => super::print(&format!(
            "Gateway\n  uri: {}\n  version: {}\n  sha: {}\n  arch: {}\nProvider\n  name: {}\n  orchestration: {}\n  version: {}\n",
            client.url(),
            info.version.release,
            info.version.sha,
            info.arch,
            info.provider.name,
            info.provider.orchestration,
            info.provider.version.release,
        )),
        Err(e) => {
            eprintln!("warning: {}", e.one_line());
            Ok(())
        }
    }
}
