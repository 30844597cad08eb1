//! Run with: `cargo run --release -p faas-provider-local --example idle -- 10`
//!
//! Deploys N `cat` functions (one replica each) in a temporary data directory, waits until they
//! are ready, and prints the resident memory of this process (function processes not counted:
//! fork-mode replicas only run one per request).

use std::time::{Duration, Instant};

use faas_core::Provider;
use faas_core::model::FunctionDeployment;
use faas_provider_local::{LocalConfig, LocalProvider};

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10);
    let dir = tempfile::tempdir()?;
    println!("before open: {} KiB", rss_kib());
    let provider = LocalProvider::open(LocalConfig::new(dir.path())).await?;
    for i in 0..n {
        let name = format!("fn-{i}");
        provider
            .deploy(FunctionDeployment::new(name, "local").with_env_process("cat"))
            .await?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = provider
            .list("")
            .await?
            .iter()
            .filter(|f| f.available_replicas == 1)
            .count();
        if ready == n {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {ready} of {n} functions ready after 30s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("{n} functions ready: {} KiB", rss_kib());
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("{n} functions idle 2s: {} KiB", rss_kib());
    provider.shutdown().await;
    Ok(())
}
