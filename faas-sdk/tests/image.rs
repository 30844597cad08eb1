//! The `FROM scratch` image template (`templates/rust/Dockerfile.scratch`) with the static `hello`
//! example: built, run, invoked, stopped with SIGTERM (PID 1 in the container) and removed.
//!
//! Needs Docker (`scripts/docker.sh`) and the musl target (`scripts/install-deps.sh`); the test builds
//! the static binary itself: `cargo test -p faas-sdk --test image -- --ignored`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `docker ARGS`, bounded to two minutes; panics on failure.
fn docker(args: &[&str]) -> String {
    let output = docker_output(args);
    assert!(
        output.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn docker_output(args: &[&str]) -> Output {
    let mut child = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait for docker").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("docker {} took over two minutes", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("docker output")
}

/// Builds the static `hello` example the way `scripts/build-images.sh` does (its own target dir,
/// `target/musl`, so the shared one is not locked) and returns the binary's path. Cargo makes this
/// a no-op when the binary is up to date.
fn build_static_hello(root: &Path) -> PathBuf {
    let target_dir = root.join("target/musl");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--release",
            "--target",
            "x86_64-unknown-linux-musl",
            "-p",
            "hello",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .expect("run cargo build");
    assert!(
        status.success(),
        "cargo build --release --target x86_64-unknown-linux-musl -p hello failed: \
         run scripts/install-deps.sh (it adds the musl target)"
    );
    let binary = target_dir.join("x86_64-unknown-linux-musl/release/hello");
    assert!(
        binary.is_file(),
        "{} is missing after the build",
        binary.display()
    );
    binary
}

/// Removes the container and the image, whatever happens.
struct Cleanup {
    container: String,
    image: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = docker_output(&["rm", "-f", &self.container]);
        let _ = docker_output(&["rmi", "-f", &self.image]);
    }
}

#[tokio::test]
#[ignore = "needs docker"]
async fn the_scratch_image_serves_and_stops_cleanly() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = build_static_hello(&root);
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(&binary, context.path().join("function")).unwrap();

    let id = std::process::id();
    let cleanup = Cleanup {
        container: format!("faas-sdk-image-test-{id}"),
        image: format!("faas-rs/sdk-image-test:{id}"),
    };
    let dockerfile = root.join("templates/rust/Dockerfile.scratch");
    docker(&[
        "build",
        "-q",
        "-f",
        dockerfile.to_str().unwrap(),
        "-t",
        &cleanup.image,
        context.path().to_str().unwrap(),
    ]);
    let size: u64 = docker(&["image", "inspect", "--format", "{{.Size}}", &cleanup.image])
        .parse()
        .unwrap();
    assert!(size < 4 << 20, "the image is {size} bytes");

    docker(&[
        "run",
        "-d",
        "--name",
        &cleanup.container,
        "-p",
        "127.0.0.1:0:8080",
        &cleanup.image,
    ]);
    let published = docker(&["port", &cleanup.container, "8080/tcp"]);
    let addr = published
        .lines()
        .find(|line| line.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no loopback port in {published:?}"))
        .to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let healthy = client.get(format!("http://{addr}/_/health")).send().await;
        if healthy.is_ok_and(|res| res.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the container never became healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let res = client
        .get(format!("http://{addr}/?name=scratch"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "Hello, scratch!");

    // SIGTERM to PID 1: the function drains and exits 0.
    docker(&["stop", "-t", "20", &cleanup.container]);
    let code = docker(&[
        "inspect",
        "--format",
        "{{.State.ExitCode}}",
        &cleanup.container,
    ]);
    assert_eq!(code, "0", "logs: {}", docker(&["logs", &cleanup.container]));
    drop(cleanup);
}
