#!/usr/bin/env bash
# Build the local test images of faas-rs FROM scratch, from static (musl) binaries of this
# workspace. Nothing is pulled: the images hold only our binaries (plus a static busybox in the
# watchdog image, as the classic `cat`/`sh` functions).
#
#   faas-rs/fwatchdog:dev  fwatchdog + busybox (fprocess=cat by default), HEALTHCHECK fwatchdog healthcheck
#   faas-rs/hello:dev      the SDK example examples/hello (serves HTTP itself), HEALTHCHECK via fwatchdog
#   faas-rs/faas:dev       the `faas` binary (gateway; `faas up --provider swarm` inside the swarm)
#
# Usage: scripts/build-images.sh [fwatchdog|hello|faas ...]   (default: all)
# Env:   PROFILE=release|dev (default release), TAG (default dev),
#        CONTEXT_ONLY=DIR: only write the build contexts to DIR/<image>/ (Dockerfile + rootfs), for a
#        client that builds them itself (the tests do, through bollard's build API),
#        CARGO_TARGET_DIR_MUSL (default <repo>/target/musl: a separate target dir, so that this
#        long build does not hold the lock of the shared one)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${PROFILE:-release}"
TAG="${TAG:-dev}"
TARGET=x86_64-unknown-linux-musl
TARGET_DIR="${CARGO_TARGET_DIR_MUSL:-$ROOT/target/musl}"
IMAGES=("$@")
[ ${#IMAGES[@]} -gt 0 ] || IMAGES=(fwatchdog hello faas)

die() { echo "build-images.sh: error: $*" >&2; exit 1; }
log() { echo "build-images.sh: $*" >&2; }

CONTEXT_ONLY="${CONTEXT_ONLY:-}"
if [ -z "$CONTEXT_ONLY" ]; then
    command -v docker >/dev/null || die "docker is missing: run scripts/docker.sh"
    docker version >/dev/null 2>&1 || die "the docker engine is not running: run scripts/docker.sh"
fi

if ! rustup target list --installed | grep -qx "$TARGET"; then
    log "adding rust target $TARGET"
    rustup target add "$TARGET"
fi

busybox_path() {
    if [ ! -x /bin/busybox ] || ! file -L /bin/busybox 2>/dev/null | grep -q "statically linked"; then
        log "installing busybox-static"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null \
            || die "apt-get install busybox-static failed"
    fi
    echo /bin/busybox
}

packages=()
for image in "${IMAGES[@]}"; do
    case "$image" in
        fwatchdog) packages+=(-p faas-watchdog) ;;
        hello) packages+=(-p faas-watchdog -p hello) ;;
        faas) packages+=(-p faas-cli) ;;
        *) die "unknown image $image (expected fwatchdog, hello or faas)" ;;
    esac
done

# crates with C code (ring, under faas-cli's NATS client) need a musl C compiler
if ! command -v musl-gcc >/dev/null 2>&1; then
    log "installing musl-tools (musl-gcc)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null \
        || die "apt-get install musl-tools failed"
fi
export CC_x86_64_unknown_linux_musl="${CC_x86_64_unknown_linux_musl:-musl-gcc}"

profile_flag=(--profile "$PROFILE")
profile_dir="$PROFILE"
[ "$PROFILE" = dev ] && profile_dir=debug
log "building static binaries ($PROFILE, $TARGET) in $TARGET_DIR"
(cd "$ROOT" && cargo build "${profile_flag[@]}" --target "$TARGET" --target-dir "$TARGET_DIR" "${packages[@]}") \
    || die "cargo build failed"
BIN="$TARGET_DIR/$TARGET/$profile_dir"

if [ -n "$CONTEXT_ONLY" ]; then
    CTX_ROOT="$CONTEXT_ONLY"
    mkdir -p "$CTX_ROOT"
else
    CTX_ROOT="$(mktemp -d)"
    trap 'rm -rf "$CTX_ROOT"' EXIT
fi

static_copy() { # src dst: copy a binary, refusing dynamically linked ones
    [ -x "$1" ] || die "missing binary $1"
    if file -L "$1" | grep -q "dynamically linked"; then die "$1 is not static"; fi
    install -D -m 0755 "$1" "$2"
    [ "$PROFILE" = dev ] && strip "$2" 2>/dev/null || true
}

build() { # name context
    if [ -n "$CONTEXT_ONLY" ]; then
        echo "$2"
        return
    fi
    log "docker build faas-rs/$1:$TAG"
    if ! docker build -q -t "faas-rs/$1:$TAG" "$2" >"$CTX_ROOT/build.log" 2>&1; then
        cat "$CTX_ROOT/build.log" >&2
        die "docker build of faas-rs/$1 failed"
    fi
    size="$(docker image inspect -f '{{.Size}}' "faas-rs/$1:$TAG")"
    echo "faas-rs/$1:$TAG $((size / 1024)) KiB"
}

for image in "${IMAGES[@]}"; do
    ctx="$CTX_ROOT/$image"
    rm -rf "$ctx"
    mkdir -p "$ctx/rootfs/tmp"
    chmod 1777 "$ctx/rootfs/tmp"
    case "$image" in
        fwatchdog)
            static_copy "$BIN/fwatchdog" "$ctx/rootfs/usr/bin/fwatchdog"
            install -D -m 0755 "$(busybox_path)" "$ctx/rootfs/bin/busybox"
            for applet in sh cat echo env sleep wc head ls; do ln -s busybox "$ctx/rootfs/bin/$applet"; done
            cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/bin fprocess=cat
EXPOSE 8080
HEALTHCHECK --interval=2s --timeout=3s --retries=3 CMD ["/usr/bin/fwatchdog", "healthcheck"]
ENTRYPOINT ["/usr/bin/fwatchdog"]
DOCKERFILE
            ;;
        hello)
            static_copy "$BIN/hello" "$ctx/rootfs/usr/bin/hello"
            static_copy "$BIN/fwatchdog" "$ctx/rootfs/usr/bin/fwatchdog"
            cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
ENV port=8080
EXPOSE 8080
HEALTHCHECK --interval=2s --timeout=3s --retries=3 CMD ["/usr/bin/fwatchdog", "healthcheck"]
ENTRYPOINT ["/usr/bin/hello"]
DOCKERFILE
            ;;
        faas)
            static_copy "$BIN/faas" "$ctx/rootfs/usr/bin/faas"
            cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY rootfs/ /
EXPOSE 8080
ENTRYPOINT ["/usr/bin/faas"]
CMD ["up", "--provider", "swarm"]
DOCKERFILE
            ;;
    esac
    build "$image" "$ctx"
done
