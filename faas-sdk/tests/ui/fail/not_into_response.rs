#[faas::handler]
async fn hello(_req: faas::Request) -> u32 {
    7
}
