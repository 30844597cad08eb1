struct Greeter;

impl Greeter {
    #[faas::handler]
    async fn hello(&self, _req: faas::Request) -> &'static str {
        "hello"
    }
}

fn main() {}
