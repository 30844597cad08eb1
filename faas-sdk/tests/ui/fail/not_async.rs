#[faas::handler]
fn hello(_req: faas::Request) -> &'static str {
    "hello"
}
