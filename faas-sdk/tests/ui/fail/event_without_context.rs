#[faas::handler]
async fn hello(_event: u32) -> Result<u32, faas::Error> {
    Ok(1)
}
