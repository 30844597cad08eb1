//! Run with: `PORT=8080 cargo run -p axum-router`, then `curl localhost:8080/users/7`.
//!
//! An axum `Router` is a `tower::Service<faas::Request>`, so `faas::run` serves it as a function:
//! routing by axum, health, limits, timeouts and graceful shutdown by faas.

use axum::Json;
use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The function's routes.
fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "axum on faas-rs" }))
        .route("/users/{id}", get(user))
        .route(
            "/echo",
            post(|Json(body): Json<Value>| async move { Json(json!({ "echo": body })) }),
        )
        .route("/sleep/{ms}", get(sleep))
}

/// Answers after `ms` milliseconds, as a slow downstream call would: shows `exec_timeout` (504)
/// and the graceful drain on SIGTERM (an in-flight call completes).
async fn sleep(Path(ms): Path<u64>) -> String {
    eprintln!("sleeping {ms} ms");
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    format!("slept {ms} ms")
}

async fn user(Path(id): Path<u32>) -> Result<Json<Value>, (StatusCode, &'static str)> {
    if id == 0 {
        return Err((StatusCode::NOT_FOUND, "no user 0"));
    }
    Ok(Json(json!({ "id": id, "name": format!("user-{id}") })))
}

#[tokio::main]
async fn main() {
    if let Err(err) = faas::run(app()).await {
        eprintln!("error: {}", err.full_message());
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use faas::testing;

    use super::*;

    #[tokio::test]
    async fn routes_in_process() {
        let res = testing::call(app(), testing::get("/users/3"))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().unwrap()["name"], "user-3");
        let res = testing::call(app(), testing::get("/users/0"))
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
        let res = testing::call(app(), testing::get("/nowhere"))
            .await
            .unwrap();
        assert_eq!(res.status(), 404);
    }
}
