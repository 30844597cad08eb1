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
# Env:   ARCH=amd64|arm64|armv7 (default amd64): the image's architecture. arm64 (Raspberry Pi 3/4/5
#        with a 64-bit OS) and armv7 (32-bit Raspberry Pi OS) cross-compile with Debian's
#        gcc-aarch64-linux-gnu / gcc-arm-linux-gnueabihf (installed when missing) and build with
#        `docker build --platform`; on an x86 host they run under qemu-user-static. The fwatchdog
#        image needs a static busybox of its architecture, so only hello and faas are built there,
#        PROFILE=release|dev (default release), TAG (default dev, dev-ARCH for arm64 and armv7),
#        CONTEXT_ONLY=DIR: only write the build contexts to DIR/<image>/ (Dockerfile + rootfs), for a
#        client that builds them itself (the tests do, through bollard's build API),
#        CARGO_TARGET_DIR_MUSL (default <repo>/target/musl: a separate target dir, so that this
#        long build does not hold the lock of the shared one)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${PROFILE:-release}"
ARCH="${ARCH:-amd64}"
TARGET_DIR="${CARGO_TARGET_DIR_MUSL:-$ROOT/target/musl}"
IMAGES=("$@")

die() { echo "build-images.sh: error: $*" >&2; exit 1; }
log() { echo "build-images.sh: $*" >&2; }

# The Rust target, the C cross compiler (for crates with C code: ring), the Debian package that
# has it, and the platform docker builds for.
case "$ARCH" in
    amd64)
        TARGET=x86_64-unknown-linux-musl CROSS_CC=musl-gcc CC_PACKAGE=musl-tools PLATFORM=linux/amd64
        [ ${#IMAGES[@]} -gt 0 ] || IMAGES=(fwatchdog hello faas)
        TAG="${TAG:-dev}"
        ;;
    arm64)
        TARGET=aarch64-unknown-linux-musl CROSS_CC=aarch64-linux-gnu-gcc CC_PACKAGE=gcc-aarch64-linux-gnu
        PLATFORM=linux/arm64
        [ ${#IMAGES[@]} -gt 0 ] || IMAGES=(hello faas)
        TAG="${TAG:-dev-arm64}"
        ;;
    armv7)
        # no musl target is served for armv7: glibc, linked statically
        TARGET=armv7-unknown-linux-gnueabihf CROSS_CC=arm-linux-gnueabihf-gcc CC_PACKAGE=gcc-arm-linux-gnueabihf
        PLATFORM=linux/arm/v7
        export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="-C target-feature=+crt-static"
        [ ${#IMAGES[@]} -gt 0 ] || IMAGES=(hello faas)
        TAG="${TAG:-dev-armv7}"
        ;;
    *) die "unknown ARCH=$ARCH (expected amd64, arm64 or armv7)" ;;
esac

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
        fwatchdog)
            [ "$ARCH" = amd64 ] || die "the fwatchdog image needs a static busybox for $ARCH: build hello or faas"
            packages+=(-p faas-watchdog) ;;
        hello) packages+=(-p faas-watchdog -p hello) ;;
        faas) packages+=(-p faas-cli) ;;
        *) die "unknown image $image (expected fwatchdog, hello or faas)" ;;
    esac
done

# crates with C code (ring, under faas-cli's NATS client and the https callbacks) need a C
# compiler for the target
if ! command -v "$CROSS_CC" >/dev/null 2>&1; then
    log "installing $CC_PACKAGE ($CROSS_CC)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$CC_PACKAGE" >/dev/null \
        || die "apt-get install $CC_PACKAGE failed"
fi
target_var="$(echo "$TARGET" | tr 'a-z-' 'A-Z_')"
cc_var="CC_$(echo "$TARGET" | tr '-' '_')"
export "$cc_var=${!cc_var:-$CROSS_CC}"
if [ "$ARCH" != amd64 ]; then
    linker_var="CARGO_TARGET_${target_var}_LINKER"
    export "$linker_var=${!linker_var:-$CROSS_CC}"
fi

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
    [ "$PROFILE" = dev ] && [ "$ARCH" = amd64 ] && strip "$2" 2>/dev/null || true
}

build() { # name context
    if [ -n "$CONTEXT_ONLY" ]; then
        echo "$2"
        return
    fi
    log "docker build faas-rs/$1:$TAG"
    platform=()
    [ "$ARCH" = amd64 ] || platform=(--platform "$PLATFORM")
    if ! docker build -q "${platform[@]}" -t "faas-rs/$1:$TAG" "$2" >"$CTX_ROOT/build.log" 2>&1; then
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
