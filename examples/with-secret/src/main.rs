//! Run with: `mkdir -p /tmp/secrets && echo -n s3cret > /tmp/secrets/api-key &&
//! secret_mount_path=/tmp/secrets PORT=8080 cargo run -p with-secret`, then
//! `curl -H 'X-Api-Key: s3cret' localhost:8080`.
//!
//! A function reading an OpenFaaS secret (`/var/openfaas/secrets/api-key`, or under
//! `$secret_mount_path`) through its `faas::Context`: a missing secret is a clear 500 error.

use faas::{Context, Error, Json, Request, StatusCode};
use serde_json::{Value, json};

/// The secret the caller's `X-Api-Key` must match.
const SECRET: &str = "api-key";

/// Answers 200 with the caller's identity when `X-Api-Key` matches the `api-key` secret, else 401.
#[faas::handler]
async fn guarded(req: Request, ctx: Context) -> Result<Json<Value>, Error> {
    let expected = ctx.secret(SECRET)?;
    let given = req.headers().get("x-api-key").and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return Err(Error::status(
            StatusCode::UNAUTHORIZED,
            "missing or wrong X-Api-Key",
        ));
    }
    Ok(Json(json!({
        "authorized": true,
        "function": ctx.function_name(),
        "namespace": ctx.namespace(),
    })))
}

#[cfg(test)]
mod tests {
    use faas::testing;

    use super::*;

    #[tokio::test]
    async fn checks_the_key_against_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SECRET), "k1\n").unwrap();
        let ctx = Context::builder().secrets_dir(dir.path()).build();
        let mut req = testing::get("/");
        req.headers_mut().insert("x-api-key", "k1".parse().unwrap());
        let res = testing::call_with(faas::context_fn(guarded), req, ctx.clone())
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text());
        let res = testing::call_with(faas::context_fn(guarded), testing::get("/"), ctx)
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
    }
}
