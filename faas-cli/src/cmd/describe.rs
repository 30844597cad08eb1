//! `faas describe NAME`: one function's details.

use clap::Args;
use faas_core::model::FunctionStatus;

use crate::Result;
use crate::cli::{GatewayArgs, StackFileArgs};

/// Arguments of `faas describe`.
#[derive(Debug, Clone, Args)]
pub struct DescribeArgs {
    /// Gateway options.
    #[command(flatten)]
    pub gateway: GatewayArgs,
    /// A stack file naming the gateway.
    #[command(flatten)]
    pub stack: StackFileArgs,
    /// The function.
    pub name: String,
    /// Print the gateway's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `faas describe`.
///
/// # Errors
/// When the gateway cannot be reached, or the function does not exist (404).
pub async fn run(args: DescribeArgs) -> Result<()> {
    let stack_gateway = args.stack.gateway()?;
    let client = args.gateway.client(stack_gateway.as_deref())?;
    let namespace = args.gateway.namespace();
    let f = client.get(&args.name, namespace).await?;
    if args.json {
        let json = serde_json::to_string_pretty(&f).unwrap_or_default();
        return super::print(&format!("{json}\n"));
    }
    let url = client.function_url(&f.name, namespace);
    let async_url = url.replacen("/function/", "/async-function/", 1);
    super::print(&render(&f, &url, &async_url))
}

fn render(f: &FunctionStatus, url: &str, async_url: &str) -> String {
    let status = if f.available_replicas > 0 {
        "Ready"
    } else {
        "Not Ready"
    };
    let mut out = String::new();
    let mut line =
        |key: &str, value: &str| out.push_str(&format!("{:<20}{value}\n", format!("{key}:")));
    line("Name", &f.name);
    line("Namespace", &f.namespace);
    line("Status", status);
    line("Replicas", &f.replicas.to_string());
    line("Available Replicas", &f.available_replicas.to_string());
    line("Invocations", &f.invocation_count.to_string());
    line("Image", &f.image);
    line(
        "Function Process",
        f.env_process
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or("<none>"),
    );
    line("URL", url);
    line("Async URL", async_url);
    line("Created", &f.created_at.to_rfc3339());
    let map = |m: Option<&std::collections::BTreeMap<String, String>>| match m {
        Some(m) if !m.is_empty() => m
            .iter()
            .map(|(k, v)| format!("\n  {k}: {v}"))
            .collect::<String>(),
        _ => " <none>".to_owned(),
    };
    let env = if f.env_vars.is_empty() {
        None
    } else {
        Some(&f.env_vars)
    };
    out.push_str(&format!("Environment:{}\n", map(env)));
    out.push_str(&format!("Labels:{}\n", map(f.labels.as_ref())));
    out.push_str(&format!("Annotations:{}\n", map(f.annotations.as_ref())));
    if !f.secrets.is_empty() {
        out.push_str(&format!("Secrets:            {}\n", f.secrets.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use faas_core::model::FunctionDeployment;

    #[test]
    fn renders_every_field() {
        let d = FunctionDeployment::new("echo", "img")
            .with_env_process("cat")
            .with_label("a", "b");
        let mut f = FunctionStatus::from_deployment(&d, "openfaas-fn", 2, chrono::Utc::now());
        f.available_replicas = 2;
        let text = render(&f, "http://x/function/echo", "http://x/async-function/echo");
        assert!(text.contains("Name:               echo\n"), "{text}");
        assert!(text.contains("Status:             Ready\n"));
        assert!(text.contains("Function Process:   cat\n"));
        assert!(text.contains("Labels:\n  a: b\n"));
        assert!(text.contains("Environment: <none>\n"));

        let site = FunctionDeployment::new("site", "img").with_env("mode", "static");
        let f = FunctionStatus::from_deployment(&site, "openfaas-fn", 1, chrono::Utc::now());
        let text = render(&f, "http://x/function/site", "http://x/async-function/site");
        assert!(text.contains("Function Process:   <none>\n"), "{text}");
    }
}
