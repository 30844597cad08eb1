#[faas::handler]
async fn hello<T>(_req: faas::Request) -> &'static str {
    "hello"
}
