//! Run with: `PORT=8080 cargo run -p hello`, then `curl 'localhost:8080/?name=faas'`.
//!
//! The smallest faas-rs function: one async fn, served with the watchdog's HTTP contract by the
//! `main` that `#[faas::handler]` generates.

use faas::{Request, RequestExt};

/// Greets `?name=` (or the world) in plain text.
#[faas::handler]
async fn hello(req: Request) -> String {
    let name = req.query_param("name");
    format!("Hello, {}!", name.as_deref().unwrap_or("world"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn greets_by_name() {
        assert_eq!(hello(faas::testing::get("/?name=Ada")).await, "Hello, Ada!");
        let res = faas::testing::call(faas::handler_fn(hello), faas::testing::get("/"))
            .await
            .unwrap();
        assert_eq!(res.text(), "Hello, world!");
    }
}
