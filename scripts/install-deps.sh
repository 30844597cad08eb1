#!/usr/bin/env bash
# Installs everything faas-rs needs beyond a Rust toolchain, on Debian 12 (as root, or with sudo):
# - python3 (the http-mode example function), busybox-static (shell and tools for FROM scratch test images)
# - docker.io (the Swarm provider and its tests), nats-server (the NATS JetStream queue and its tests)
# - musl-tools and the x86_64 musl target (static binaries for FROM scratch images), file (checks
#   that those binaries are static)
# - gcc-aarch64-linux-gnu, gcc-arm-linux-gnueabihf and the aarch64-unknown-linux-musl and
#   armv7-unknown-linux-gnueabihf targets (Raspberry Pi images), qemu-user-static and
#   binfmt-support (running them here; scripts/docker.sh registers qemu)
# - chromium (the portal's browser tests, headless)
# Idempotent: installs only what is missing.
set -euo pipefail
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

need=()
command -v python3 >/dev/null || need+=(python3)
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v dockerd >/dev/null || need+=(docker.io)
command -v nats-server >/dev/null || need+=(nats-server)
command -v curl >/dev/null || need+=(curl)
command -v file >/dev/null || need+=(file)
command -v musl-gcc >/dev/null || need+=(musl-tools)
command -v aarch64-linux-gnu-gcc >/dev/null || need+=(gcc-aarch64-linux-gnu)
command -v arm-linux-gnueabihf-gcc >/dev/null || need+=(gcc-arm-linux-gnueabihf)
[[ -x /usr/bin/qemu-aarch64-static ]] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null || need+=(binfmt-support)
command -v chromium >/dev/null || need+=(chromium)
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if command -v rustup >/dev/null; then
    for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf; do
        rustup target list --installed | grep -qx "$target" || rustup target add "$target"
    done
fi
echo "dependencies installed"
