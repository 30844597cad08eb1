#!/usr/bin/env bash
# Runs the whole test suite: `scripts/test.sh` (no external services needed),
# `scripts/test.sh --ignored` (the suites that need Docker Swarm, NATS or Chromium: install them with
# scripts/install-deps.sh, start the services with scripts/docker.sh and scripts/nats.sh start).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--ignored" ]]; then
    # Serial: these tests share one swarm and one NATS server.
    exec cargo test --workspace --locked --no-fail-fast -- --ignored --test-threads=1
fi
exec cargo test --workspace --locked --no-fail-fast
