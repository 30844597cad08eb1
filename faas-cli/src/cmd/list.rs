//! `faas list`: the deployed functions as a table (or JSON).

use clap::Args;

use crate::Result;
use crate::cli::GatewayArgs;

/// Arguments of `faas list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// Also show the image, the process and the available replicas.
    #[arg(short, long)]
    pub verbose: bool,
    /// Print the gateway's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print only the names, one a line.
    #[arg(short, long, conflicts_with_all = ["json", "verbose"])]
    pub quiet: bool,
}

/// Runs `faas list`.
///
/// # Errors
/// When the gateway cannot be reached or answers an error.
pub async fn run(args: ListArgs) -> Result<()> {
    let client = args.gateway.client(None)?;
    let mut functions = client.list(args.gateway.namespace()).await?;
    functions.sort_by(|a, b| a.name.cmp(&b.name));
    if args.json {
        let json = serde_json::to_string_pretty(&functions).unwrap_or_default();
        return super::print(&format!("{json}\n"));
    }
    if args.quiet {
        let names: String = functions.iter().map(|f| format!("{}\n", f.name)).collect();
        return super::print(&names);
    }
    let out = if args.verbose {
        let rows: Vec<Vec<String>> = functions
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    f.image.clone(),
                    f.env_process.clone().unwrap_or_default(),
                    format!("{}", f.invocation_count),
                    f.replicas.to_string(),
                    f.available_replicas.to_string(),
                    f.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                ]
            })
            .collect();
        super::table(
            &[
                "Function",
                "Image",
                "Process",
                "Invocations",
                "Replicas",
                "Available",
                "CreatedAt",
            ],
            &rows,
        )
    } else {
        let rows: Vec<Vec<String>> = functions
            .iter()
            .map(|f| {
                vec![
                    f.name.clone(),
                    format!("{}", f.invocation_count),
                    f.replicas.to_string(),
                ]
            })
            .collect();
        super::table(&["Function", "Invocations", "Replicas"], &rows)
    };
    super::print(&out)
}
