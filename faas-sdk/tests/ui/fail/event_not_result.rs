#[faas::handler]
async fn hello(event: u32, _ctx: faas::Context) -> u32 {
    event
}
