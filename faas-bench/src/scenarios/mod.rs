//! The scenario registry.
//!
//! A scenario is a type implementing [`Scenario`], in its own file of this folder. It starts the processes it
//! needs through [`Bench`] (which finds the release binaries, logs their output and kills them when dropped),
//! measures cases with [`Bench::measure`], and adds derived figures with their targets with
//! [`Bench::figure`]; `faas-bench` prints the report as a table or as JSON.
//!
//! # Adding a scenario
//! 1. Create `src/scenarios/NAME.rs` with a unit struct implementing [`Scenario`]:
//!    ```no_run
//!    use faas_bench::bench::{Bench, Series, Watch};
//!    use faas_bench::report::{Bound, Figure, Unit};
//!
//!    /// `NAME`: one line on what it measures.
//!    #[derive(Debug)]
//!    pub struct Name;
//!
//!    #[async_trait::async_trait(?Send)]
//!    impl faas_bench::scenarios::Scenario for Name {
//!        fn name(&self) -> &'static str { "NAME" }
//!        fn about(&self) -> &'static str { "what it measures" }
//!        async fn run(&self, bench: &mut Bench) -> anyhow::Result<()> {
//!            let (mut upstream, addr) = bench.start_upstream().await?;
//!            let base = Series::new("a", "upstream direct");
//!            for conns in bench.connections(&[1, 16, 64]) {
//!                let target = bench.target(addr, "/");
//!                bench.measure(&base, &target, conns, &[Watch::of(&upstream)], Some(upstream.pid())).await?;
//!            }
//!            let rps = bench.report().case("a", 16).map_or(0.0, |c| c.rps);
//!            bench.figure(Figure::new("direct at 16 connections", rps, Unit::PerSecond)
//!                .target(Bound::AtLeast(1000.0)));
//!            upstream.check_alive()?;
//!            upstream.stop(std::time::Duration::from_secs(2)).await;
//!            Ok(())
//!        }
//!    }
//!    ```
//! 2. Declare it here (`mod NAME;`) and add `Box::new(NAME::Name)` to [`all`].
//!
//! Keep every load bounded: [`Bench::measure`] is (by `--duration`, `--max-requests` and `--timeout`); a
//! scenario that polls something else (a deployment becoming ready) bounds its wait too.

use async_trait::async_trait;

use crate::bench::Bench;

mod async_;
mod baseline;
mod gateway;
mod sdk;
mod swarm;
mod watchdog;

pub use async_::Async;
pub use baseline::Baseline;
pub use gateway::Gateway;
pub use sdk::Sdk;
pub use swarm::Swarm;
pub use watchdog::Watchdog;

/// A benchmark scenario.
#[async_trait(?Send)]
pub trait Scenario: std::fmt::Debug {
    /// Its name on the command line.
    fn name(&self) -> &'static str;

    /// One line on what it measures.
    fn about(&self) -> &'static str;

    /// Runs it, recording cases, figures and notes in `bench`.
    ///
    /// # Errors
    /// When a process under test is missing, does not start, or dies.
    async fn run(&self, bench: &mut Bench) -> anyhow::Result<()>;
}

/// Every registered scenario.
#[must_use]
pub fn all() -> Vec<Box<dyn Scenario>> {
    vec![
        Box::new(Baseline),
        Box::new(Watchdog),
        Box::new(Gateway),
        Box::new(Swarm),
        Box::new(Sdk),
        Box::new(Async),
    ]
}

/// The scenario named `name`.
#[must_use]
pub fn find(name: &str) -> Option<Box<dyn Scenario>> {
    all().into_iter().find(|s| s.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let scenarios = all();
        for (i, s) in scenarios.iter().enumerate() {
            assert!(!s.about().is_empty());
            assert!(scenarios[i + 1..].iter().all(|o| o.name() != s.name()));
            assert_eq!(find(s.name()).unwrap().name(), s.name());
        }
        assert!(find("nope").is_none());
        assert!(find("watchdog").is_some());
    }
}
