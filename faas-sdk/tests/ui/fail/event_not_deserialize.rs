struct Event;

#[faas::handler]
async fn hello(_event: Event, _ctx: faas::Context) -> Result<u32, faas::Error> {
    Ok(1)
}
