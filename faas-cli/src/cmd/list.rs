//! `faas list`: the deployed functions as a table (or JSON).

use clap::{Args, ValueEnum};
use faas_core::model::FunctionStatus;

use crate::Result;
use crate::cli::{GatewayArgs, StackFileArgs};

/// The order of `faas list` (faas-cli's `--sort`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
#[non_exhaustive]
pub enum SortOrder {
    /// By name.
    #[default]
    Name,
    /// Most invoked first.
    Invocations,
    /// Oldest first.
    Creation,
}

impl SortOrder {
    /// Sorts `functions` in this order (ties by name).
    pub fn sort(self, functions: &mut [FunctionStatus]) {
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        match self {
            SortOrder::Name => {}
            SortOrder::Invocations => {
                functions.sort_by(|a, b| b.invocation_count.total_cmp(&a.invocation_count));
            }
            SortOrder::Creation => functions.sort_by_key(|f| f.created_at),
        }
    }
}

/// Arguments of `faas list`.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// A stack file naming the gateway.
    #[command(flatten)]
    pub stack: StackFileArgs,
    /// The order.
    #[arg(long, value_enum, default_value_t = SortOrder::Name)]
    pub sort: SortOrder,
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
    let stack_gateway = args.stack.gateway()?;
    let client = args.gateway.client(stack_gateway.as_deref())?;
    let mut functions = client.list(args.gateway.namespace()).await?;
    args.sort.sort(&mut functions);
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

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::model::FunctionDeployment;

    #[test]
    fn sort_orders() {
        let at = |name: &str, invocations: f64, secs: i64| {
            let d = FunctionDeployment::new(name, "img");
            let created = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let mut f = FunctionStatus::from_deployment(&d, "openfaas-fn", 1, created);
            f.invocation_count = invocations;
            f
        };
        let functions = vec![at("b", 5.0, 10), at("c", 1.0, 5), at("a", 5.0, 20)];
        let names = |order: SortOrder| {
            let mut f = functions.clone();
            order.sort(&mut f);
            f.into_iter().map(|f| f.name).collect::<Vec<_>>()
        };
        assert_eq!(names(SortOrder::Name), ["a", "b", "c"]);
        assert_eq!(names(SortOrder::Invocations), ["a", "b", "c"]);
        assert_eq!(names(SortOrder::Creation), ["c", "b", "a"]);
    }
}
