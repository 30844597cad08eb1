#[faas::handler]
async fn hello(_req: &faas::Request) -> &'static str {
    "hello"
}
