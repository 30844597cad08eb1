//! End-to-end tests of the client commands of `faas` against a real `faas up`, and of their error
//! lines when the gateway is down.

mod common;

use std::process::Command;

use common::{FAAS, Faas, ok, run, script, stderr, stdout};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_drive_a_gateway() {
    let tmp = tempfile::tempdir().unwrap();
    script(
        tmp.path(),
        "secret.sh",
        "cat \"$secret_mount_path/api-key\"\necho 'read the secret' >&2",
    );
    let faas = Faas::start(&tmp.path().join("data"), &["--auth", "admin:pw"]);

    let version = ok(&faas.cli(&["version"]));
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version}");
    assert!(version.contains("faas-provider-local"), "{version}");

    // Secrets.
    assert!(
        ok(&faas.cli(&["secret", "create", "api-key", "--from-literal", "s3cret"]))
            .contains("api-key")
    );
    let out = faas.cli_with_stdin(&["secret", "create", "from-stdin"], b"piped value");
    ok(&out);
    assert!(ok(&faas.cli(&["secret", "list"])).contains("api-key"));
    let out = faas.cli(&["secret", "create", "api-key", "--from-literal", "again"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "error: secret \"api-key\" already exists (409)\n"
    );

    // Deploy from flags and from a stack file.
    let image = tmp.path().to_str().unwrap();
    ok(&faas.cli(&[
        "deploy",
        "--name",
        "sec",
        "--image",
        image,
        "--fprocess",
        "sh secret.sh",
        "--secret",
        "api-key",
        "--env",
        "greeting=hi",
        "--env",
        "combine_output=false",
        "--label",
        "team=a",
    ]));
    let stack = tmp.path().join("stack.yml");
    std::fs::write(&stack, "provider:\n  name: openfaas\nfunctions:\n  echo:\n    image: examples/functions/echo\n    fprocess: cat\n").unwrap();
    let out = ok(&faas.cli(&["deploy", "-f", stack.to_str().unwrap()]));
    assert!(out.contains("deployed echo (created)"), "{out}");
    // Deploying again updates (PUT).
    let out = ok(&faas.cli(&["deploy", "-f", stack.to_str().unwrap()]));
    assert!(out.contains("deployed echo (updated)"), "{out}");
    faas.wait_available("echo", 1).await;
    faas.wait_available("sec", 1).await;

    // List and describe.
    let list = ok(&faas.cli(&["list"]));
    assert!(list.starts_with("Function"), "{list}");
    assert!(list.contains("echo") && list.contains("sec"), "{list}");
    assert_eq!(ok(&faas.cli(&["list", "-q"])), "echo\nsec\n");
    let verbose = ok(&faas.cli(&["list", "-v"]));
    assert!(verbose.contains("examples/functions/echo"), "{verbose}");
    let json: Value = serde_json::from_str(&ok(&faas.cli(&["list", "--json"]))).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let describe = ok(&faas.cli(&["describe", "sec"]));
    assert!(describe.contains("Name:               sec\n"), "{describe}");
    assert!(
        describe.contains("Function Process:   sh secret.sh\n"),
        "{describe}"
    );
    assert!(
        describe.contains("  greeting: hi\n") && describe.contains("  team: a\n"),
        "{describe}"
    );
    assert!(
        describe.contains(&format!("URL:                {}/function/sec\n", faas.url)),
        "{describe}"
    );

    // Invoke: stdin is the body, the answer is stdout.
    assert_eq!(
        ok(&faas.cli_with_stdin(&["invoke", "echo"], b"hello from stdin")),
        "hello from stdin"
    );
    assert_eq!(
        ok(&faas.cli(&["invoke", "echo", "--data", "inline"])),
        "inline"
    );
    assert_eq!(ok(&faas.cli(&["invoke", "sec"])), "s3cret");

    // Scale.
    assert!(ok(&faas.cli(&["scale", "echo", "--replicas", "2"])).contains("2"));
    assert_eq!(faas.wait_available("echo", 2).await["replicas"], 2);

    // Logs: the function wrote a line on stderr.
    let logs = ok(&faas.cli(&["logs", "sec", "--lines", "100"]));
    assert!(logs.contains("read the secret"), "{logs}");
    let json_logs = ok(&faas.cli(&["logs", "sec", "--json", "--since", "10m"]));
    let first: Value = serde_json::from_str(json_logs.lines().next().unwrap()).unwrap();
    assert_eq!(first["name"], "sec");

    // Errors are one line with the status.
    for args in [
        &["describe", "nope"][..],
        &["invoke", "nope", "--data", "x"],
        &["remove", "nope"],
        &["scale", "nope", "-r", "1"],
    ] {
        let out = faas.cli(args);
        assert!(!out.status.success(), "{args:?}");
        assert_eq!(
            stderr(&out),
            "error: function \"nope\" not found (404)\n",
            "{args:?}"
        );
    }
    let out = faas.cli(&[
        "deploy",
        "--name",
        "Bad_Name",
        "--image",
        "x",
        "--fprocess",
        "cat",
    ]);
    assert!(!out.status.success());
    let line = stderr(&out);
    assert!(
        line.starts_with("error: ") && line.contains("service") && line.ends_with("(400)\n"),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
    let mut wrong = Command::new(FAAS);
    wrong.args(["list", "--gateway", &faas.url, "--auth", "admin:wrong"]);
    let out = run(wrong, b"");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("(401)"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1);

    // Remove.
    assert!(ok(&faas.cli(&["remove", "echo", "sec"])).contains("removed sec"));
    assert_eq!(ok(&faas.cli(&["list", "-q"])), "");
    ok(&faas.cli(&["secret", "remove", "api-key"]));
    assert!(!ok(&faas.cli(&["secret", "list"])).contains("api-key"));
    assert!(faas.stop().success());
}

#[test]
fn every_client_command_reports_a_gateway_that_is_down_in_one_line() {
    let port = common::free_port();
    let gateway = format!("http://127.0.0.1:{port}");
    let expected = format!("error: cannot reach the gateway at {gateway}: connection refused\n");
    let commands: [&[&str]; 11] = [
        &["list"],
        &["describe", "echo"],
        &["invoke", "echo", "--data", "x"],
        &[
            "deploy",
            "--name",
            "echo",
            "--image",
            "x",
            "--fprocess",
            "cat",
        ],
        &["remove", "echo"],
        &["scale", "echo", "--replicas", "2"],
        &["logs", "echo"],
        &["secret", "list"],
        &["secret", "create", "s", "--from-literal", "v"],
        &["secret", "remove", "s"],
        &["deploy", "-f", "examples/stack.yml"],
    ];
    for args in commands {
        let mut command = Command::new(FAAS);
        command
            .args(args)
            .current_dir(common::repo_root())
            .env("OPENFAAS_URL", &gateway)
            .env_remove("FAAS_AUTH");
        let out = run(command, b"");
        assert!(!out.status.success(), "{args:?} succeeded");
        assert_eq!(stderr(&out), expected, "{args:?}");
        assert_eq!(stdout(&out), "", "{args:?}");
    }
    // version still prints the client's version, and warns about the gateway.
    let mut command = Command::new(FAAS);
    command.args(["version", "--gateway", &gateway]);
    let out = run(command, b"");
    assert!(out.status.success());
    assert!(stdout(&out).contains(env!("CARGO_PKG_VERSION")));
    assert_eq!(stderr(&out), expected.replacen("error", "warning", 1));
}

#[test]
fn up_reports_a_port_that_is_taken() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let mut command = Command::new(FAAS);
    command
        .args(["up", "--port", &port, "--data-dir"])
        .arg(tmp.path())
        .env("RUST_LOG", "off");
    let out = run(command, b"");
    assert!(!out.status.success());
    let line = stderr(&out);
    assert!(
        line.starts_with(&format!("error: cannot listen on 127.0.0.1:{port}: ")),
        "{line}"
    );
    assert_eq!(line.lines().count(), 1);
}

#[test]
fn up_refuses_a_callback_ca_file_it_cannot_use() {
    let tmp = tempfile::tempdir().unwrap();
    let not_pem = tmp.path().join("ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    for (file, reason) in [
        (tmp.path().join("missing.pem"), "cannot read the CA file"),
        (not_pem, "holds no certificate"),
    ] {
        let mut command = Command::new(FAAS);
        command
            .args(["up", "--port", "0", "--data-dir"])
            .arg(tmp.path())
            .arg("--callback-ca-file")
            .arg(&file)
            .env("RUST_LOG", "off");
        let out = run(command, b"");
        assert!(!out.status.success());
        let text = stderr(&out);
        assert!(text.contains("--callback-ca-file"), "{text}");
        assert!(text.contains(reason), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_follow_streams_new_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    common::deploy_logger(&faas, tmp.path()).await;
    // Lines written after the follower connected arrive on it.
    let line = common::follow_shows_new_lines(&faas, &["--follow"]).await;
    assert!(line.contains("logger ("), "{line}");
    assert!(faas.stop().success());
}
