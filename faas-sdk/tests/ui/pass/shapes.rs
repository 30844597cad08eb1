// Every supported shape expands to a `main` that type-checks. Each handler lives in its own module,
// so the generated `main`s are (unused) module functions and the test's own `main` returns at once.
#![allow(dead_code)]

use serde::{Deserialize, Serialize};

mod no_args {
    #[faas::handler]
    pub async fn hello() -> &'static str {
        "hello"
    }
}

mod request {
    #[faas::handler]
    pub async fn echo(req: faas::Request) -> faas::Result<Vec<u8>> {
        Ok(req.into_body().bytes().await?.to_vec())
    }
}

mod request_context {
    use faas::{Context, Request, StatusCode};

    #[faas::handler]
    pub async fn who(_req: Request, ctx: Context) -> (StatusCode, String) {
        (StatusCode::OK, ctx.namespace().to_owned())
    }
}

#[derive(Deserialize)]
pub struct In {
    pub n: u32,
}

#[derive(Serialize)]
pub struct Out {
    pub double: u32,
}

mod event {
    #[faas::handler]
    pub async fn double(
        event: super::In,
        _ctx: faas::Context,
    ) -> Result<super::Out, std::io::Error> {
        Ok(super::Out {
            double: event.n * 2,
        })
    }
}

fn main() {
    // The handlers stay callable (from tests, for instance).
    let _ = no_args::hello();
    let _ = event::double(In { n: 1 }, faas::Context::builder().build());
}
