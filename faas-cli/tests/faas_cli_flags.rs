//! faas-cli's flags, with faas-cli's meanings, against a real `faas up`: what faas-cli users type
//! out of habit (`logs NAME --tail`, `--lines N`, `list --sort`, `invoke --content-type`, `-a`,
//! `deploy --filter '*gif*'`, `--replace`, `secret create --replace`...) does what it does there.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Faas, ok, script, stderr, stdout};
use serde_json::Value;

/// The lines of a command's stdout.
fn lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| !l.is_empty()).collect()
}

/// Polls `check` every 200 ms until it returns `Some` (bounded by [`common::READY`]).
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + common::READY;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_take_faas_clis_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    common::deploy_logger(&faas, tmp.path()).await;
    for marker in ["m1", "m2", "m3"] {
        assert_eq!(faas.invoke_ok("logger", marker).await, "ok");
    }
    eventually("the three lines in the log history", || {
        let out = ok(&faas.cli(&["logs", "logger", "--tail=false"]));
        (out.matches("logged: m").count() == 3).then_some(())
    })
    .await;

    // --lines N: the last N lines; --tail=false (and no --tail): the history, then exit
    let last = ok(&faas.cli(&["logs", "logger", "--lines", "1"]));
    assert_eq!(lines(&last).len(), 1, "{last}");
    assert!(last.contains("logged: m3"), "{last}");
    let two = ok(&faas.cli(&["logs", "logger", "--tail=false", "--lines", "2"]));
    assert_eq!(lines(&two).len(), 2, "{two}");
    // the default output names the function and its replica
    assert!(last.contains(" logger ("), "{last}");

    // -o json, --json and -j: one JSON message a line
    for flags in [&["-o", "json"][..], &["--json"], &["-j"]] {
        let mut args = vec!["logs", "logger", "--lines", "3"];
        args.extend_from_slice(flags);
        let out = ok(&faas.cli(&args));
        let texts: Vec<String> = lines(&out)
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .inspect(|m| assert_eq!(m["name"], "logger", "{out}"))
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            texts,
            ["logged: m1", "logged: m2", "logged: m3"],
            "{flags:?}"
        );
    }

    // plain: the time (a Go layout), then the name and instance only when asked for
    let plain = ok(&faas.cli(&[
        "logs",
        "logger",
        "--lines",
        "1",
        "--name",
        "--instance",
        "--time-format",
        "15:04:05",
    ]));
    let line = plain.trim_end();
    let (time, rest) = line.split_once(' ').unwrap();
    assert_eq!(time.len(), 8, "{line}");
    assert!(
        time.chars().all(|c| c.is_ascii_digit() || c == ':'),
        "{line}"
    );
    assert!(rest.starts_with("logger ("), "{line}");
    assert!(rest.ends_with(") logged: m3"), "{line}");
    let bare = ok(&faas.cli(&["logs", "logger", "--lines", "1", "-o", "plain"]));
    assert!(bare.trim_end().ends_with("Z logged: m3"), "{bare}");
    assert!(!bare.contains("logger ("), "{bare}");
    let kv = ok(&faas.cli(&["logs", "logger", "--lines", "1", "-o", "keyvalue", "--name"]));
    assert!(kv.starts_with("timestamp=\""), "{kv}");
    assert!(kv.contains(" name=\"logger\" text=\"logged: m3\" "), "{kv}");

    // --since and --since-time
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    assert_eq!(
        ok(&faas.cli(&["logs", "logger", "--since-time", &future])),
        ""
    );
    let recent = ok(&faas.cli(&["logs", "logger", "--since", "10m"]));
    assert_eq!(recent.matches("logged: m").count(), 3, "{recent}");
    let out = faas.cli(&["logs", "logger", "--since-time", "an hour ago"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--since-time"), "{}", stderr(&out));

    // --replica: one replica's lines (faas-cli's --instance prints the id, it does not filter)
    let json = ok(&faas.cli(&["logs", "logger", "--lines", "1", "--json"]));
    let message: Value = serde_json::from_str(json.trim()).unwrap();
    let instance = message["instance"].as_str().unwrap().to_owned();
    let mine = ok(&faas.cli(&["logs", "logger", "--replica", &instance, "--json"]));
    for line in lines(&mine) {
        let message: Value = serde_json::from_str(line).unwrap();
        assert_eq!(message["instance"], instance.as_str(), "{mine}");
    }
    assert_eq!(mine.matches("logged: m").count(), 3, "{mine}");
    let nobody = ok(&faas.cli(&["logs", "logger", "--replica", "no-such-replica"]));
    assert_eq!(nobody, "");

    // the count is --lines: `--tail 5` is refused, not read as a follow of function "5"
    let out = faas.cli(&["logs", "logger", "--tail", "5"]);
    assert!(!out.status.success());
    assert_eq!(stdout(&out), "");

    // --tail and -t follow: a line written after they connected arrives
    for flag in ["--tail", "-t"] {
        common::follow_shows_new_lines(&faas, &[flag]).await;
    }
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_and_list_take_faas_clis_flags() {
    let tmp = tempfile::tempdir().unwrap();
    script(
        tmp.path(),
        "headers.sh",
        "cat >/dev/null\nprintf '%s|%s' \"$Http_Content_Type\" \"$Http_X_Test\"",
    );
    script(
        tmp.path(),
        "fails.sh",
        "cat >/dev/null\necho 'half of the answer'\nexit 3",
    );
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    let image = tmp.path().to_str().unwrap();
    for (name, process) in [
        ("idle", "cat"),
        ("headers", "sh headers.sh"),
        ("fails", "sh fails.sh"),
    ] {
        ok(&faas.cli(&[
            "deploy",
            "--name",
            name,
            "--image",
            image,
            "--fprocess",
            process,
        ]));
        faas.wait_available(name, 1).await;
    }

    // --content-type (text/plain by default, as faas-cli sends), -H NAME=VALUE or "NAME: VALUE"
    assert_eq!(
        ok(&faas.cli(&["invoke", "headers", "--data", "x"])),
        "text/plain|"
    );
    assert_eq!(
        ok(&faas.cli(&[
            "invoke",
            "headers",
            "--data",
            "{}",
            "--content-type",
            "application/json",
            "-H",
            "X-Test: colon",
        ])),
        "application/json|colon"
    );
    assert_eq!(
        ok(&faas.cli(&[
            "invoke",
            "headers",
            "--data",
            "x",
            "-H",
            "Content-Type=text/csv",
            "-H",
            "X-Test=equals",
        ])),
        "text/csv|equals"
    );

    // a function that fails: its answer on stdout, the status in the error
    let out = faas.cli(&["invoke", "fails", "--data", "x"]);
    assert!(!out.status.success());
    let answer = stdout(&out);
    assert!(answer.contains("exit status 3"), "{answer}");
    assert!(answer.contains("half of the answer"), "{answer}");
    assert_eq!(
        stderr(&out),
        "error: function \"fails\" answered internal server error (500)\n"
    );
    // the gateway's own errors stay one line, with nothing on stdout
    let out = faas.cli(&["invoke", "nope", "--data", "x"]);
    assert_eq!(stdout(&out), "");
    assert_eq!(stderr(&out), "error: function \"nope\" not found (404)\n");

    // -a queues the call and prints its id
    let out = faas.cli(&["invoke", "headers", "-a", "--data", "x"]);
    let call_id = ok(&out);
    assert_eq!(lines(&call_id).len(), 1, "{call_id}");
    assert!(
        stderr(&out).contains("/system/invocations/"),
        "{}",
        stderr(&out)
    );

    // --sort invocations | name | creation
    let counts = || -> Option<()> {
        let list: Value = serde_json::from_str(&ok(&faas.cli(&["list", "--json"]))).ok()?;
        let count = |name: &str| {
            list.as_array()?.iter().find(|f| f["name"] == name)?["invocationCount"].as_f64()
        };
        // headers: 3 calls (and the queued one, once the worker ran it); fails: 1
        (count("headers")? >= 3.0 && count("fails")? >= 1.0).then_some(())
    };
    eventually("the invocation counts", counts).await;
    assert_eq!(
        ok(&faas.cli(&["list", "--sort", "invocations", "-q"])),
        "headers\nfails\nidle\n"
    );
    assert_eq!(
        ok(&faas.cli(&["list", "--sort", "name", "-q"])),
        "fails\nheaders\nidle\n"
    );
    assert_eq!(
        ok(&faas.cli(&["list", "--sort", "creation", "-q"])),
        "idle\nheaders\nfails\n"
    );
    let out = faas.cli(&["list", "--sort", "size"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("invocations"), "{}", stderr(&out));

    // -f STACK: the stack file names the gateway
    let stack = tmp.path().join("stack.yml");
    std::fs::write(
        &stack,
        format!("provider:\n  gateway: {}\nfunctions: {{}}\n", faas.url),
    )
    .unwrap();
    let stack = stack.to_str().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    assert_eq!(
        ok(&faas.cli_in(elsewhere.path(), &["list", "-q", "-f", stack])),
        "fails\nheaders\nidle\n"
    );
    let describe = ok(&faas.cli_in(elsewhere.path(), &["describe", "idle", "--yaml", stack]));
    assert!(describe.contains("Name:               idle"), "{describe}");
    assert_eq!(
        ok(&faas.cli_in(
            elsewhere.path(),
            &["invoke", "headers", "-f", stack, "--data", "x"]
        )),
        "text/plain|"
    );
    assert!(faas.stop().success());
}

/// Writes `stack.yml` into `dir`: three functions running `cat` in `dir`, and the gateway.
fn write_stack(dir: &Path, gateway: &str) {
    let image = dir.to_str().unwrap();
    std::fs::write(
        dir.join("stack.yml"),
        format!(
            "provider:\n  name: openfaas\n  gateway: {gateway}\nfunctions:\n  resize-gif:\n    image: \
             {image}\n    fprocess: cat\n  resize-png:\n    image: {image}\n    fprocess: cat\n  hello:\n    \
             image: {image}\n    fprocess: cat\n    environment:\n      v: ${{FAAS_FLAGS_TEST_UNSET:-default}}\n"
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_remove_and_secret_take_faas_clis_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    let dir = tempfile::tempdir().unwrap();
    write_stack(dir.path(), &faas.url);
    let names = || ok(&faas.cli(&["list", "-q"]));

    // no -f: ./stack.yml, as faas-cli; --filter takes wildcards, --regex an expression
    let out = ok(&faas.cli_in(dir.path(), &["deploy", "--filter", "*gif*"]));
    assert!(out.contains("deployed resize-gif (created)"), "{out}");
    assert_eq!(names(), "resize-gif\n");
    ok(&faas.cli_in(dir.path(), &["deploy", "--regex", "png$"]));
    assert_eq!(names(), "resize-gif\nresize-png\n");
    let out = faas.cli_in(dir.path(), &["deploy", "--filter", "nothing*"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nothing*"), "{}", stderr(&out));
    assert_eq!(names(), "resize-gif\nresize-png\n");

    // --envsubst=false keeps ${VAR} as written
    ok(&faas.cli_in(
        dir.path(),
        &["deploy", "--filter", "hello", "--envsubst=false"],
    ));
    let hello: Value =
        serde_json::from_str(&ok(&faas.cli(&["describe", "hello", "--json"]))).unwrap();
    assert_eq!(hello["envVars"]["v"], "${FAAS_FLAGS_TEST_UNSET:-default}");
    let out = ok(&faas.cli_in(dir.path(), &["deploy", "--filter", "hello"]));
    assert!(out.contains("deployed hello (updated)"), "{out}");
    let hello: Value =
        serde_json::from_str(&ok(&faas.cli(&["describe", "hello", "--json"]))).unwrap();
    assert_eq!(hello["envVars"]["v"], "default");

    // --update=false only creates; --replace removes and creates
    let out = faas.cli_in(
        dir.path(),
        &["deploy", "--filter", "hello", "--update=false"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("(409)"), "{}", stderr(&out));
    let out = faas.cli_in(dir.path(), &["deploy", "--filter", "hello", "--replace"]);
    assert!(
        stdout(&out).contains("deployed hello (replaced)"),
        "{}",
        stderr(&out)
    );
    let replaced: Value =
        serde_json::from_str(&ok(&faas.cli(&["describe", "hello", "--json"]))).unwrap();
    assert_ne!(replaced["createdAt"], hello["createdAt"]);
    let out = faas.cli_in(dir.path(), &["deploy", "--replace", "--update=true"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--replace"), "{}", stderr(&out));

    // --readonly (faas-cli's) and --readonly-root-filesystem (this CLI's)
    let image = dir.path().to_str().unwrap();
    for (name, flag) in [("ro", "--readonly"), ("ro2", "--readonly-root-filesystem")] {
        ok(&faas.cli(&[
            "deploy",
            "--name",
            name,
            "--image",
            image,
            "--fprocess",
            "cat",
            flag,
        ]));
        let f: Value = serde_json::from_str(&ok(&faas.cli(&["describe", name, "--json"]))).unwrap();
        assert_eq!(f["readOnlyRootFilesystem"], true, "{flag}: {f}");
    }

    // remove: --filter over ./stack.yml; without names, every function of ./stack.yml
    ok(&faas.cli_in(dir.path(), &["remove", "--filter", "resize-*"]));
    assert_eq!(names(), "hello\nro\nro2\n");
    ok(&faas.cli_in(dir.path(), &["deploy", "--filter", "resize-*"]));
    let out = ok(&faas.cli_in(dir.path(), &["remove"]));
    assert_eq!(lines(&out).len(), 3, "{out}");
    assert_eq!(names(), "ro\nro2\n");
    ok(&faas.cli(&["remove", "ro", "ro2"]));

    // secrets: values are trimmed unless --trim=false; create --replace updates
    script(dir.path(), "secret.sh", "cat \"$secret_mount_path/key\"");
    ok(&faas.cli(&["secret", "create", "key", "--from-literal", "  one  "]));
    ok(&faas.cli(&[
        "deploy",
        "--name",
        "sec",
        "--image",
        image,
        "--fprocess",
        "sh secret.sh",
        "--secret",
        "key",
    ]));
    faas.wait_available("sec", 1).await;
    assert_eq!(faas.invoke_ok("sec", "").await, "one");
    let out = faas.cli_with_stdin(&["secret", "update", "key", "--trim=false"], b" two\n");
    ok(&out);
    let secret_is = |value: &'static str| {
        let faas = &faas;
        async move {
            let deadline = Instant::now() + common::READY;
            loop {
                if faas.invoke_ok("sec", "").await == value {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the secret never became {value:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    secret_is(" two\n").await;
    let out = faas.cli(&["secret", "create", "key", "--from-literal", "three"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("(409)"), "{}", stderr(&out));
    let out = ok(&faas.cli(&[
        "secret",
        "create",
        "key",
        "--from-literal",
        "three",
        "--replace",
    ]));
    assert_eq!(out, "updated secret key\n");
    secret_is("three").await;
    let out = faas.cli(&["secret", "create", "blank", "--from-literal", "   "]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));
    let list: Value = serde_json::from_str(&ok(&faas.cli(&["secret", "list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["name"], "key");
    assert!(faas.stop().success());
}
