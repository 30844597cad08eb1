//! The portal at `/ui/`: one page (HTML, CSS and JavaScript embedded in the binary, no build step)
//! that lists the functions of a namespace, shows one, invokes it synchronously or asynchronously
//! (following the call's record), deploys a function and deletes one, all through the gateway's own
//! REST API with URLs relative to the page, so it works under any prefix the gateway is mounted at.
//! Basic auth covers it as it covers `/system/*`. [`GatewayBuilder::ui`](super::GatewayBuilder::ui)
//! switches it off.

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};

use crate::invoke::Body;

const INDEX_HTML: &str = include_str!("ui/index.html");
const APP_JS: &str = include_str!("ui/app.js");
const APP_CSS: &str = include_str!("ui/app.css");

/// The `Content-Security-Policy` of every portal file: the page runs only its own script and style,
/// talks only to its own origin, and cannot be framed.
pub const UI_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The portal's routes (`GET`, and so `HEAD`): `/ui` redirects to `/ui/`, which serves the page.
pub(crate) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { redirect_to_slash() }))
        .route(
            "/ui/",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/ui/index.html",
            get(|| async { asset(INDEX_HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
}

fn asset(content: &'static str, content_type: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(Bytes::from_static(content.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(UI_CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `/ui` → `/ui/`, as a relative reference so that a mount prefix is kept.
fn redirect_to_slash() -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("ui/"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_files_the_portal_serves() {
        // every local reference of index.html is one of the routes above
        for reference in ["href=\"app.css\"", "src=\"app.js\""] {
            assert!(
                INDEX_HTML.contains(reference),
                "index.html lacks {reference}"
            );
        }
        assert!(
            !INDEX_HTML.contains("<script>"),
            "inline scripts break the CSP"
        );
        assert!(
            !INDEX_HTML.contains("style=\""),
            "inline styles break the CSP"
        );
    }

    #[test]
    fn the_script_never_parses_server_data_as_html() {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
        ] {
            assert!(!APP_JS.contains(sink), "app.js uses {sink}");
        }
    }

    #[test]
    fn the_script_uses_relative_api_urls() {
        // absolute paths would break a gateway mounted under a prefix
        for absolute in [
            "'/system",
            "\"/system",
            "`/system",
            "'/function",
            "`/function",
        ] {
            assert!(
                !APP_JS.contains(absolute),
                "app.js uses an absolute URL: {absolute}"
            );
        }
    }
}
