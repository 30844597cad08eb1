#[faas::handler]
async fn hello(_req: impl std::fmt::Debug) -> &'static str {
    "hello"
}
