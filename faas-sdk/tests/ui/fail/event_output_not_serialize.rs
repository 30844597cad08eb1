#[derive(serde::Deserialize)]
struct Event {
    name: String,
}

struct Greeting(String);

#[faas::handler]
async fn hello(event: Event, _ctx: faas::Context) -> Result<Greeting, faas::Error> {
    Ok(Greeting(event.name))
}
