//! The gateway's `/system/*` API, `/healthz`, `/metrics` and auth, through `oneshot`.

mod gateway_support;

use std::sync::Arc;

use base64::Engine as _;
use faas_core::gateway::{BasicAuth, Gateway};
use faas_core::invoke::Body;
use gateway_support::{NS, TestProvider, call, json, req};
use http::StatusCode;
use serde_json::json;

fn gateway(provider: &Arc<TestProvider>) -> Gateway {
    Gateway::builder(provider.clone()).build()
}

#[tokio::test]
async fn deploy_list_get_update_delete() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);

    let deploy = json!({"service": "echo", "image": "alpine", "envProcess": "cat", "labels": {"com.openfaas.scale.min": "2"}});
    let (status, _, _) = call(&gw, req("POST", "/system/functions", deploy.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(provider.replicas("echo", NS), Some(2));
    assert_eq!(
        provider
            .deployment("echo", NS)
            .unwrap()
            .namespace
            .as_deref(),
        Some(NS)
    );

    // Deploying again conflicts.
    let (status, headers, body) =
        call(&gw, req("POST", "/system/functions", deploy.to_string())).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(headers["x-openfaas-internal"], "gateway");
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );

    let (status, headers, body) = call(&gw, req("GET", "/system/functions", Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let list = json(&body);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "echo");
    assert_eq!(list[0]["namespace"], NS);
    assert_eq!(list[0]["replicas"], 2);
    assert_eq!(list[0]["invocationCount"], 0.0);
    assert_eq!(list[0]["envProcess"], "cat");

    let (status, _, body) = call(&gw, req("GET", "/system/function/echo", Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["image"], "alpine");

    let (status, _, _) = call(&gw, req("GET", "/system/function/nope", Body::empty())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let update = json!({"service": "echo", "image": "alpine:3", "envProcess": "cat"});
    let (status, _, _) = call(&gw, req("PUT", "/system/functions", update.to_string())).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(provider.deployment("echo", NS).unwrap().image, "alpine:3");

    // faas-cli PUTs first and falls back to POST on 404.
    let missing = json!({"service": "other", "image": "alpine"});
    let (status, _, _) = call(&gw, req("PUT", "/system/functions", missing.to_string())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, _) = call(
        &gw,
        req(
            "DELETE",
            "/system/functions",
            json!({"functionName": "echo"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(provider.count(), 0);
    let (status, _, _) = call(
        &gw,
        req(
            "DELETE",
            "/system/functions",
            json!({"functionName": "echo"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn go_clients_nulls_are_absent_fields() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);
    // As older faas-cli versions send it (faas-provider types without omitempty).
    let deploy = json!({
        "service": "legacy", "image": "alpine", "network": "func_functions", "envProcess": "cat",
        "envVars": null, "constraints": null, "secrets": null, "labels": null, "annotations": null,
        "limits": null, "requests": null, "registryAuth": ""
    });
    let (status, _, body) = call(&gw, req("POST", "/system/functions", deploy.to_string())).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert_eq!(
        provider
            .deployment("legacy", NS)
            .unwrap()
            .env_process
            .as_deref(),
        Some("cat")
    );
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field_and_changes_nothing() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);
    let cases = [
        (
            json!({"service": "Bad_Name", "image": "alpine"}).to_string(),
            Some("service"),
        ),
        (
            json!({"service": "echo", "image": ""}).to_string(),
            Some("image"),
        ),
        (
            json!({"service": "echo", "image": "a", "envVars": {"1x": "y"}}).to_string(),
            Some("envVars.1x"),
        ),
        (
            json!({"service": "echo", "image": "a", "namespace": "Bad"}).to_string(),
            Some("namespace"),
        ),
        (
            json!({"service": "echo", "image": "a", "labels": {"com.openfaas.scale.min": "x"}})
                .to_string(),
            Some("labels.com.openfaas.scale.min"),
        ),
        ("{not json".to_owned(), None),
        (String::new(), None),
    ];
    for (body, field) in cases {
        for method in ["POST", "PUT"] {
            let (status, headers, bytes) =
                call(&gw, req(method, "/system/functions", body.clone())).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {body}");
            assert_eq!(headers["x-openfaas-internal"], "gateway");
            let value = json(&bytes);
            assert!(value["error"].is_string(), "{value}");
            assert_eq!(value["field"].as_str(), field, "{body}");
        }
    }
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/functions?namespace=Bad",
            json!({"service": "echo", "image": "a"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(provider.count(), 0, "nothing was created");

    let (status, _, body) = call(
        &gw,
        req(
            "DELETE",
            "/system/functions",
            json!({"functionName": ""}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["field"], "functionName");
}

#[tokio::test]
async fn namespaces_are_honoured() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/functions?namespace=prod",
            json!({"service": "a", "image": "x"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/functions",
            json!({"service": "b", "image": "x", "namespace": "prod"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(provider.replicas("a", "prod").is_some());
    assert!(provider.replicas("b", "prod").is_some());

    let (_, _, body) = call(
        &gw,
        req("GET", "/system/functions?namespace=prod", Body::empty()),
    )
    .await;
    assert_eq!(json(&body).as_array().unwrap().len(), 2);
    let (_, _, body) = call(&gw, req("GET", "/system/functions", Body::empty())).await;
    assert_eq!(json(&body), json!([]));
    let (status, _, body) = call(
        &gw,
        req("GET", "/system/function/a?namespace=prod", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body)["namespace"], "prod");
    let (status, _, _) = call(&gw, req("GET", "/system/function/a", Body::empty())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, _, body) = call(&gw, req("GET", "/system/namespaces", Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json(&body), json!([NS, "prod"]));

    let (status, _, _) = call(
        &gw,
        req(
            "DELETE",
            "/system/functions?namespace=prod",
            json!({"functionName": "a"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert!(provider.replicas("a", "prod").is_none());
}

#[tokio::test]
async fn scale_function() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);
    provider.add("echo", Vec::new());
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/scale-function/echo",
            json!({"serviceName": "echo", "replicas": 3}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(provider.replicas("echo", NS), Some(3));
    // Scale to zero is allowed.
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/scale-function/echo",
            json!({"replicas": 0}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(provider.replicas("echo", NS), Some(0));

    let (status, _, body) = call(
        &gw,
        req(
            "POST",
            "/system/scale-function/echo",
            json!({"replicas": 5000}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["field"], "replicas");
    let (status, _, _) = call(&gw, req("POST", "/system/scale-function/echo", "nope")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, body) = call(
        &gw,
        req(
            "POST",
            "/system/scale-function/echo",
            json!({"serviceName": "x", "replicas": 1}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json(&body)["field"], "serviceName");
    assert_eq!(
        provider.replicas("echo", NS),
        Some(0),
        "bad requests changed nothing"
    );

    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/scale-function/nope",
            json!({"replicas": 1}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn info_healthz_and_unknown_routes() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);
    let (status, _, body) = call(&gw, req("GET", "/system/info", Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    let info = json(&body);
    assert_eq!(info["provider"]["provider"], "test-provider");
    assert_eq!(info["provider"]["orchestration"], "memory");
    assert_eq!(info["version"]["release"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["arch"], std::env::consts::ARCH);

    let (status, _, body) = call(&gw, req("GET", "/healthz", Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], b"OK");

    for path in [
        "/nope",
        "/async-function/echo",
        "/system/invocations/abc",
        "/function/",
    ] {
        let (status, headers, body) = call(&gw, req("POST", path, Body::empty())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(headers["x-openfaas-internal"], "gateway");
        assert!(json(&body)["error"].is_string());
    }
    let (status, _, _) = call(&gw, req("PATCH", "/system/functions", Body::empty())).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn secrets() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/secrets",
            json!({"name": "api-key", "value": "s3cret"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        provider.secret_value("api-key", NS).as_deref(),
        Some(&b"s3cret"[..])
    );
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/secrets",
            json!({"name": "api-key", "value": "x"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _, _) = call(
        &gw,
        req(
            "POST",
            "/system/secrets",
            json!({"name": "raw", "rawValue": "AAEC"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        provider.secret_value("raw", NS).as_deref(),
        Some(&[0u8, 1, 2][..])
    );

    let (status, _, body) = call(&gw, req("GET", "/system/secrets", Body::empty())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json(&body),
        json!([{"name": "api-key", "namespace": NS}, {"name": "raw", "namespace": NS}])
    );

    let (status, _, _) = call(
        &gw,
        req(
            "PUT",
            "/system/secrets",
            json!({"name": "api-key", "value": "new"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        provider.secret_value("api-key", NS).as_deref(),
        Some(&b"new"[..])
    );
    let (status, _, _) = call(
        &gw,
        req(
            "PUT",
            "/system/secrets",
            json!({"name": "missing", "value": "v"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for (body, field) in [
        (json!({"name": "Bad Name", "value": "v"}), "name"),
        (json!({"name": "empty"}), "value"),
        (
            json!({"name": "x", "value": "v", "namespace": "Bad"}),
            "namespace",
        ),
    ] {
        let (status, _, bytes) = call(&gw, req("POST", "/system/secrets", body.to_string())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(json(&bytes)["field"], field);
    }
    assert!(provider.secret_value("empty", NS).is_none());

    let (status, _, _) = call(
        &gw,
        req(
            "DELETE",
            "/system/secrets",
            json!({"name": "api-key"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(
        &gw,
        req("DELETE", "/system/secrets?name=raw", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(
        &gw,
        req(
            "DELETE",
            "/system/secrets",
            json!({"name": "api-key"}).to_string(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, body) = call(&gw, req("GET", "/system/secrets", Body::empty())).await;
    assert_eq!(json(&body), json!([]));
}

#[tokio::test]
async fn logs_are_ndjson() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);
    provider.add("echo", Vec::new());
    let (status, headers, body) = call(
        &gw,
        req("GET", "/system/logs?name=echo&tail=2", Body::empty()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/x-ndjson");
    let lines: Vec<serde_json::Value> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["text"], "line 3");
    assert_eq!(lines[1]["name"], "echo");
    assert_eq!(lines[1]["namespace"], NS);
    assert_eq!(lines[1]["instance"], "r0");
    assert_eq!(lines[1]["timestamp"], "2024-05-01T10:00:04Z");

    let (status, _, body) = call(
        &gw,
        req(
            "GET",
            "/system/logs?name=echo&since=2024-05-01T10:00:03Z&follow=false",
            Body::empty(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .count(),
        2
    );

    for (uri, field) in [
        ("/system/logs", "name"),
        ("/system/logs?name=echo&tail=x", "tail"),
        ("/system/logs?name=echo&since=yesterday", "since"),
        ("/system/logs?name=echo&follow=maybe", "follow"),
    ] {
        let (status, _, body) = call(&gw, req("GET", uri, Body::empty())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(json(&body)["field"], field, "{uri}");
    }
    let (status, _, _) = call(&gw, req("GET", "/system/logs?name=nope", Body::empty())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn basic_auth_protects_system_and_ui_only() {
    let provider = TestProvider::new();
    provider.add("echo", Vec::new());
    let gw = Gateway::builder(provider.clone())
        .basic_auth(BasicAuth::new("admin", "pw"))
        .build();
    let encode = |user: &str, pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    for path in [
        "/system/functions",
        "/system/info",
        "/ui/",
        "/system/invocations/x",
    ] {
        let (status, headers, _) = call(&gw, req("GET", path, Body::empty())).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(headers["www-authenticate"], "Basic realm=\"Restricted\"");
        let mut wrong = req("GET", path, Body::empty());
        wrong
            .headers_mut()
            .insert("authorization", encode("admin", "nope").parse().unwrap());
        let (status, _, _) = call(&gw, wrong).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // A deploy with wrong credentials changes nothing.
    let mut deploy = req(
        "POST",
        "/system/functions",
        json!({"service": "new", "image": "x"}).to_string(),
    );
    deploy
        .headers_mut()
        .insert("authorization", encode("root", "pw").parse().unwrap());
    assert_eq!(call(&gw, deploy).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(provider.count(), 1);

    for path in ["/system/functions", "/ui/"] {
        let mut ok = req("GET", path, Body::empty());
        ok.headers_mut()
            .insert("authorization", encode("admin", "pw").parse().unwrap());
        assert_eq!(call(&gw, ok).await.0, StatusCode::OK, "{path}");
    }
    for path in ["/healthz", "/metrics"] {
        assert_eq!(
            call(&gw, req("GET", path, Body::empty())).await.0,
            StatusCode::OK,
            "{path}"
        );
    }
    // /function/* is open: the function has no replica, but the answer is not 401.
    let (status, _, _) = call(&gw, req("GET", "/function/nope", Body::empty())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_portal_is_served_under_ui_with_a_strict_csp() {
    let provider = TestProvider::new();
    let gw = gateway(&provider);
    for (path, content_type, needle) in [
        (
            "/ui/",
            "text/html; charset=utf-8",
            "<script src=\"app.js\" defer></script>",
        ),
        (
            "/ui/index.html",
            "text/html; charset=utf-8",
            "<title>faas-rs</title>",
        ),
        (
            "/ui/app.js",
            "text/javascript; charset=utf-8",
            "system/functions",
        ),
        ("/ui/app.css", "text/css; charset=utf-8", "body {"),
    ] {
        let (status, headers, body) = call(&gw, req("GET", path, Body::empty())).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(
            headers["content-security-policy"],
            faas_core::gateway::UI_CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains(needle), "{path} lacks {needle}");
        // HEAD answers the same headers
        let (status, headers, _) = call(&gw, req("HEAD", path, Body::empty())).await;
        assert_eq!(status, StatusCode::OK, "HEAD {path}");
        assert_eq!(headers["content-type"], content_type, "HEAD {path}");
    }
    // /ui redirects to /ui/ with a relative reference, which keeps a mount prefix
    let (status, headers, _) = call(&gw, req("GET", "/ui", Body::empty())).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers["location"], "ui/");
    // anything else under /ui/ is the usual JSON 404, other methods 405
    let (status, headers, body) = call(&gw, req("GET", "/ui/nope.js", Body::empty())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-openfaas-internal"], "gateway");
    assert!(
        json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("/ui/nope.js")
    );
    let (status, _, _) = call(&gw, req("POST", "/ui/", Body::empty())).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);

    // switched off, /ui/ is a 404 like any unknown route
    let without = Gateway::builder(provider.clone()).ui(false).build();
    for path in ["/ui", "/ui/", "/ui/app.js"] {
        let (status, _, _) = call(&without, req("GET", path, Body::empty())).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn system_body_limit_gives_413_and_changes_nothing() {
    let provider = TestProvider::new();
    let gw = Gateway::builder(provider.clone())
        .system_body_limit(64)
        .build();
    let big = json!({"service": "echo", "image": "alpine", "envVars": {"PAD": "x".repeat(200)}})
        .to_string();
    let (status, headers, _) = call(&gw, req("POST", "/system/functions", big.clone())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(headers["x-openfaas-internal"], "gateway");
    // Without Content-Length (streamed), the limit still applies.
    let stream = futures::stream::iter(
        big.into_bytes()
            .chunks(16)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let (status, _, _) = call(
        &gw,
        req("POST", "/system/functions", Body::from_stream(stream)),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(provider.count(), 0);
}
