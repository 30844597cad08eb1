#[faas::handler]
async fn hello(_ctx: faas::Context, _req: faas::Request) -> &'static str {
    "hello"
}
