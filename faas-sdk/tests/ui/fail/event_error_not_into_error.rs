#[faas::handler]
async fn hello(event: u32, _ctx: faas::Context) -> Result<u32, String> {
    Ok(event)
}
