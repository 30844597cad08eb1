#[faas::handler(port = 8080)]
async fn hello(_req: faas::Request) -> &'static str {
    "hello"
}
