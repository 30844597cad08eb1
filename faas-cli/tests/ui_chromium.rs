//! The portal (`/ui/`) in a real browser: headless Chromium, driven over the DevTools protocol,
//! lists the functions of a real `faas up`, invokes one synchronously and asynchronously, scales it,
//! deploys one (and is told which field is wrong when a deployment is bad), shows server data as text,
//! reads a function's logs, and deletes a function. Needs `chromium` (`scripts/install-deps.sh` installs it), so it runs with the suites
//! that need installed services: `scripts/test.sh --ignored`.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Faas, READY, http_client};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// A headless Chromium with its DevTools endpoint on a loopback port, killed (with its process
/// group: renderers and helpers) when dropped.
struct Browser {
    child: Child,
    devtools: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut command = Command::new("chromium");
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command
            .spawn()
            .expect("chromium is not installed: run scripts/install-deps.sh");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // keep reading so that chromium never blocks on a full pipe
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + READY;
        let mut seen = Vec::new();
        let devtools = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("DevTools listening on ws://") {
                        let host = url.split('/').next().unwrap().to_owned();
                        break format!("http://{host}");
                    }
                    seen.push(line);
                }
                Err(_) => panic!("chromium printed no DevTools address:\n{}", seen.join("\n")),
            }
        };
        Browser {
            child,
            devtools,
            _profile: profile,
        }
    }

    /// Opens `url` in a new tab and connects to it.
    async fn open(&self, url: &str) -> Page {
        let target: Value = http_client()
            .put(format!("{}/json/new?{url}", self.devtools))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ws = target["webSocketDebuggerUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("no webSocketDebuggerUrl in {target}"));
        let (socket, _) = tokio_tungstenite::connect_async(ws).await.unwrap();
        Page { socket, next_id: 0 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// One tab, spoken to with DevTools protocol commands.
struct Page {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next_id: u64,
}

impl Page {
    /// Sends a command and returns its result (events in between are skipped).
    async fn command(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket.send(Message::text(message)).await.unwrap();
        loop {
            let frame = tokio::time::timeout(READY, self.socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method}"))
                .expect("the DevTools connection closed")
                .unwrap();
            let Message::Text(text) = frame else { continue };
            let answer: Value = serde_json::from_str(&text).unwrap();
            if answer["id"] == id {
                assert!(answer["error"].is_null(), "{method}: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise): its value, or the exception it threw.
    async fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self
            .command(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        if result["exceptionDetails"].is_null() {
            Ok(result["result"]["value"].clone())
        } else {
            Err(result["exceptionDetails"].clone())
        }
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    async fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .await
            .unwrap_or_else(|exception| panic!("{expression}: {exception}"))
    }

    /// Evaluates `expression` until it is truthy, returning its value. An exception counts as not
    /// yet (the page may still be loading).
    async fn wait_for(&mut self, what: &str, expression: &str) -> Value {
        let deadline = Instant::now() + READY;
        loop {
            let value = match self.try_eval(expression).await {
                Ok(value) => value,
                Err(exception) => json!({"exception": exception}),
            };
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Object(o) => !o.contains_key("exception"),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{expression}` stayed {value}; page:\n{}",
                self.eval("document.body ? document.body.innerText : '(no body)'")
                    .await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn text_of(selector: &str) -> String {
    format!("(document.querySelector({selector:?}) || {{}}).textContent || ''")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium"]
async fn the_portal_lists_invokes_deploys_and_deletes_functions() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &[]);
    faas.deploy(
        json!({"service": "echo", "image": "examples/functions/echo", "envProcess": "cat"}),
    )
    .await;
    faas.wait_available("echo", 1).await;
    let browser = Browser::start();
    let mut page = browser.open(&format!("{}/ui", faas.url)).await;

    // the list, once the page's script has run (/ui redirected to /ui/)
    page.wait_for(
        "the function list",
        "document.body && document.body.dataset.ready === 'true' && !!document.querySelector('tr[data-function=\"echo\"]')",
    )
    .await;
    assert!(
        page.eval("location.pathname")
            .await
            .as_str()
            .unwrap()
            .ends_with("/ui/")
    );
    let provider = page.eval(&text_of("#provider")).await;
    assert!(
        provider.as_str().unwrap().contains("faas-provider-local"),
        "{provider}"
    );
    let row = page
        .eval("[...document.querySelectorAll('tr[data-function=\"echo\"] td')].map(td => td.textContent)")
        .await;
    assert_eq!(
        row,
        json!(["echo", "examples/functions/echo", "cat", "1/1", "0"])
    );

    // open it and invoke it
    page.eval("document.querySelector('tr[data-function=\"echo\"]').click()")
        .await;
    page.wait_for(
        "the function's page",
        "!document.querySelector('#detail').hidden && document.querySelector('#detail-name').textContent === 'echo'",
    )
    .await;
    assert_eq!(page.eval("location.hash").await, "#/function/echo");
    page.eval(
        "const f = document.querySelector('#invoke'); f.elements.body.value = 'hello from chromium'; f.requestSubmit()",
    )
    .await;
    page.wait_for(
        "the sync response",
        "!document.querySelector('#result').hidden && document.querySelector('#result-body').textContent === 'hello from chromium'",
    )
    .await;
    let status = page.eval(&text_of("#result-status")).await;
    assert_eq!(status, "200 OK");
    let meta = page.eval(&text_of("#result-meta")).await;
    assert!(meta.as_str().unwrap().contains("ms round trip"), "{meta}");
    // the list refreshes after an invocation
    page.wait_for(
        "the invocation count",
        "document.querySelector('tr[data-function=\"echo\"] td:nth-child(5)').textContent === '1'",
    )
    .await;

    // scale it from its page
    page.eval(
        "const s = document.querySelector('#scale'); s.elements.replicas.value = '2'; s.requestSubmit()",
    )
    .await;
    page.wait_for(
        "two replicas in the list",
        "document.querySelector('tr[data-function=\"echo\"] td:nth-child(4)').textContent === '2/2'",
    )
    .await;
    assert_eq!(faas.wait_available("echo", 2).await["replicas"], 2);

    // asynchronously: 202, then the call's record until it succeeds
    page.eval(
        "document.querySelector('#invoke').elements.body.value = 'later'; document.querySelector('#invoke-async').click()",
    )
    .await;
    let meta = page
        .wait_for(
            "the async call's record",
            "(t => t.includes('succeeded') && t)(document.querySelector('#result-meta').textContent)",
        )
        .await;
    assert!(meta.as_str().unwrap().starts_with("call "), "{meta}");
    assert_eq!(page.eval(&text_of("#result-body")).await, "later");

    // a bad deployment names the field and deploys nothing
    page.eval("location.hash = '#/deploy'").await;
    page.wait_for(
        "the deploy form",
        "!document.querySelector('#deploy').hidden",
    )
    .await;
    page.eval(
        "const d = document.querySelector('#deploy-form'); d.elements.service.value = 'Bad_Name'; d.elements.image.value = 'x'; d.requestSubmit()",
    )
    .await;
    let error = page
        .wait_for(
            "the deploy error",
            "document.querySelector('#deploy-status').className === 'error' && document.querySelector('#deploy-status').textContent",
        )
        .await;
    assert!(
        error.as_str().unwrap().contains("400") && error.as_str().unwrap().contains("service"),
        "{error}"
    );
    let list = faas.get_json("/system/functions").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // a good one: deployed, shown, invocable; a label value full of markup stays text
    let markup = "<img src=x onerror=\"document.title='pwned'\">";
    page.eval(&format!(
        "const g = document.querySelector('#deploy-form'); g.elements.service.value = 'shout'; \
         g.elements.image.value = 'examples/functions/echo'; \
         g.elements.envProcess.value = \"sh -c 'echo shouting >&2; tr a-z A-Z'\"; \
         g.elements.envVars.value = 'exec_timeout=5s\\ncombine_output=false'; g.elements.labels.value = 'note={}'; \
         g.requestSubmit()",
        markup.replace('\'', "\\'").replace('"', "\\\"")
    ))
    .await;
    page.wait_for(
        "the new function's page",
        "location.hash === '#/function/shout' && document.querySelector('#detail-name').textContent === 'shout'",
    )
    .await;
    let deployed = faas.wait_available("shout", 1).await;
    assert_eq!(
        deployed["envProcess"],
        "sh -c 'echo shouting >&2; tr a-z A-Z'"
    );
    assert_eq!(deployed["envVars"]["exec_timeout"], "5s");
    assert_eq!(deployed["envVars"]["combine_output"], "false");
    assert_eq!(deployed["labels"]["note"], markup);
    let labels = page.eval(&text_of("dd[data-field=\"labels\"]")).await;
    assert_eq!(labels, format!("note={markup}"));
    assert_eq!(
        page.eval("document.querySelectorAll('#detail img').length")
            .await,
        0
    );
    assert_ne!(page.eval("document.title").await, "pwned");
    page.eval(
        "const h = document.querySelector('#invoke'); h.elements.body.value = 'quiet please'; h.requestSubmit()",
    )
    .await;
    page.wait_for(
        "the new function's response",
        "document.querySelector('#result-body').textContent === 'QUIET PLEASE'",
    )
    .await;

    // its stderr, in the logs (asked again until the line has arrived)
    page.wait_for(
        "the function's log line",
        "(document.querySelector('#show-logs').click(), document.querySelector('#logs').textContent.includes('shouting'))",
    )
    .await;

    // delete it (confirming the dialog)
    page.eval("window.confirm = () => true; document.querySelector('#delete').click()")
        .await;
    page.wait_for(
        "the list without the deleted function",
        "location.hash === '#/' && !document.querySelector('tr[data-function=\"shout\"]') && !!document.querySelector('tr[data-function=\"echo\"]')",
    )
    .await;
    let gone = faas
        .request(reqwest::Method::GET, "/system/function/shout")
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);

    drop(page);
    drop(browser);
    assert!(faas.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium"]
async fn the_portal_works_behind_basic_auth() {
    let tmp = tempfile::tempdir().unwrap();
    let faas = Faas::start(&tmp.path().join("data"), &["--auth", "admin:s3cret"]);
    faas.deploy(
        json!({"service": "echo", "image": "examples/functions/echo", "envProcess": "cat"}),
    )
    .await;
    let browser = Browser::start();
    let mut page = browser.open("about:blank").await;
    // the browser answers the Basic challenge with these credentials, for the page and its API calls
    let credentials = "YWRtaW46czNjcmV0"; // base64 of admin:s3cret
    page.command("Network.enable", json!({})).await;
    page.command(
        "Network.setExtraHTTPHeaders",
        json!({"headers": {"Authorization": format!("Basic {credentials}")}}),
    )
    .await;
    page.command("Page.navigate", json!({"url": format!("{}/ui/", faas.url)}))
        .await;
    page.wait_for(
        "the function list behind auth",
        "document.body && document.body.dataset.ready === 'true' && !!document.querySelector('tr[data-function=\"echo\"]')",
    )
    .await;
    assert_eq!(
        page.eval("document.querySelector('#banner').hidden").await,
        true
    );

    // without credentials the page itself is refused
    let refused = http_client()
        .get(format!("{}/ui/", faas.url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);

    drop(page);
    drop(browser);
    assert!(faas.stop().success());
}
