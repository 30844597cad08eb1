#[faas::handler]
async fn hello(_req: faas::Request, _ctx: faas::Context, _extra: u32) -> &'static str {
    "hello"
}
