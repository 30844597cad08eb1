//! `baseline`: `bench-upstream` alone, to check the load generator and pick runtime settings.
//!
//! It runs the (a) case of the other scenarios with nothing else, and reports the CPU the load generator
//! and the upstream use: on this 2-core machine it is how `--client-threads` and `--upstream-threads` were
//! chosen (see `docs/performance.md`).

use std::time::Duration;

use async_trait::async_trait;

use super::Scenario;
use crate::bench::{Bench, Series, Watch};

const DIRECT: Series = Series::new("a", "upstream direct");

/// The `baseline` scenario.
#[derive(Debug, Clone, Copy)]
pub struct Baseline;

#[async_trait(?Send)]
impl Scenario for Baseline {
    fn name(&self) -> &'static str {
        "baseline"
    }

    fn about(&self) -> &'static str {
        "bench-upstream alone: the load generator's ceiling on this machine"
    }

    async fn run(&self, bench: &mut Bench) -> anyhow::Result<()> {
        let (mut upstream, addr) = bench.start_upstream().await?;
        let target = bench.target(addr, "/");
        let watch = [Watch::of(&upstream)];
        for conns in bench.connections(&[1, 16, 64]) {
            bench
                .measure(&DIRECT, &target, conns, &watch, Some(upstream.pid()))
                .await?;
        }
        upstream.check_alive()?;
        upstream.stop(Duration::from_secs(2)).await;
        Ok(())
    }
}
