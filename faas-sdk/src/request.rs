//! [`Request`] and [`RequestExt`]: what a handler receives.

use std::sync::{Arc, OnceLock};

use crate::body::Body;
use crate::context::{Context, Function};

/// The request a function receives: an [`http::Request`] with a [`Body`].
///
/// Method, path, query and headers come from `http`'s accessors (`req.method()`,
/// `req.uri().path()`, `req.uri().query()`, `req.headers()`), the body from `req.into_body()`
/// ([`Body::bytes`], [`Body::json`], or as a stream), and the call's [`Context`] from
/// [`RequestExt::context`]. Being a plain `http::Request`, it is what axum, tower-http and hyper
/// services take.
pub type Request<B = Body> = http::Request<B>;

/// Accessors faas adds to [`Request`].
pub trait RequestExt {
    /// The call's context. A request served by [`run`](crate::run) always carries one; otherwise
    /// (a request built by hand) a context read from the process environment is returned.
    fn context(&self) -> Context;

    /// The first value of the query parameter `name`, percent-decoded.
    ///
    /// ```
    /// use faas::RequestExt;
    /// let req = faas::Request::get("/f?name=J%C3%BCrgen&x=1").body(faas::Body::empty()).unwrap();
    /// assert_eq!(req.query_param("name").as_deref(), Some("Jürgen"));
    /// assert_eq!(req.query_param("missing"), None);
    /// ```
    fn query_param(&self, name: &str) -> Option<String>;
}

impl<B> RequestExt for http::Request<B> {
    fn context(&self) -> Context {
        match self.extensions().get::<Context>() {
            Some(ctx) => ctx.clone(),
            None => default_context(),
        }
    }

    fn query_param(&self, name: &str) -> Option<String> {
        let query = self.uri().query()?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
    }
}

/// The context of a request that was not served by [`run`](crate::run): the process environment,
/// no call id, no deadline.
pub(crate) fn default_context() -> Context {
    static FUNCTION: OnceLock<Arc<Function>> = OnceLock::new();
    let function = FUNCTION.get_or_init(|| Arc::new(Function::from_env(None)));
    Context::for_request(
        function,
        &http::HeaderMap::new(),
        tokio::time::Instant::now(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_context_wins_over_the_default() {
        let mut req = Request::new(Body::empty());
        assert_eq!(req.context().call_id(), None);
        req.extensions_mut()
            .insert(Context::builder().call_id("c-1").build());
        assert_eq!(req.context().call_id(), Some("c-1"));
    }
}
