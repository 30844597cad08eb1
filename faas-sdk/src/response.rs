//! [`IntoResponse`]: what a handler may return, and [`Json`].

use std::borrow::Cow;

use bytes::Bytes;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::body::Body;
use crate::error::{BoxError, Error};

/// The response a function answers with.
pub type Response<B = Body> = http::Response<B>;

const TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");
const OCTETS: HeaderValue = HeaderValue::from_static("application/octet-stream");
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A value a handler can return: it becomes the HTTP response.
///
/// | type | status | `Content-Type` |
/// |---|---|---|
/// | `String`, `&'static str`, `Cow<'static, str>` | 200 | `text/plain; charset=utf-8` |
/// | `Vec<u8>`, `Bytes`, `&'static [u8]` | 200 | `application/octet-stream` |
/// | `()` | 200, empty body | none |
/// | `StatusCode` | that status, empty body | none |
/// | `(StatusCode, T)` | that status | `T`'s |
/// | [`Json<T>`] | 200 | `application/json` |
/// | `http::Response<B>` | as given | as given |
/// | [`Body`] | 200 | none |
/// | `Result<T, E>` with `E: Into<faas::Error>` | `T`'s, or the error's (500 unless set) with `{"error": "..."}` | `application/json` on error |
/// | [`Error`] | its status | `application/json` |
///
/// ```
/// use faas::{IntoResponse, StatusCode};
/// let res = (StatusCode::CREATED, "made").into_response();
/// assert_eq!(res.status(), StatusCode::CREATED);
/// ```
pub trait IntoResponse {
    /// Converts `self` into the response.
    fn into_response(self) -> Response;
}

/// The message of an error response, kept as a response extension so the server can log it.
#[derive(Debug, Clone)]
pub(crate) struct ErrorMessage(pub(crate) String);

fn with_type(body: impl Into<Body>, content_type: HeaderValue) -> Response {
    let mut res = Response::new(body.into());
    res.headers_mut().insert(CONTENT_TYPE, content_type);
    res
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        with_type(self, TEXT)
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        with_type(self, TEXT)
    }
}

impl IntoResponse for Cow<'static, str> {
    fn into_response(self) -> Response {
        match self {
            Cow::Borrowed(s) => s.into_response(),
            Cow::Owned(s) => s.into_response(),
        }
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        with_type(self, OCTETS)
    }
}

impl IntoResponse for &'static [u8] {
    fn into_response(self) -> Response {
        with_type(self, OCTETS)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        with_type(self, OCTETS)
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(Body::empty())
    }
}

impl IntoResponse for Body {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = self;
        res
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        let mut res = self.1.into_response();
        *res.status_mut() = self.0;
        res
    }
}

impl<B> IntoResponse for http::Response<B>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    fn into_response(self) -> Response {
        self.map(Body::new)
    }
}

impl<T, E> IntoResponse for Result<T, E>
where
    T: IntoResponse,
    E: Into<Error>,
{
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(err) => err.into().into_response(),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let json = self.to_json();
        let mut res = with_type(json.to_string(), JSON);
        *res.status_mut() = self.status_code();
        res.extensions_mut()
            .insert(ErrorMessage(self.full_message()));
        res
    }
}

impl IntoResponse for std::convert::Infallible {
    fn into_response(self) -> Response {
        match self {}
    }
}

/// A JSON value: as a response it is serialised with `Content-Type: application/json`; as input,
/// [`Json::from_body`] parses a body (400 with serde's message on bad JSON).
///
/// ```
/// use faas::{IntoResponse, Json};
/// let res = Json(serde_json::json!({"ok": true})).into_response();
/// assert_eq!(res.headers()["content-type"], "application/json");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> Json<T> {
    /// Reads `body` and parses it as JSON.
    ///
    /// # Errors
    ///
    /// `400 Bad Request` with serde's message when the body is not valid JSON for `T`.
    pub async fn from_body(body: Body) -> Result<Self, Error> {
        body.json().await.map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => with_type(bytes, JSON),
            Err(err) => Error::msg("cannot serialise the response as JSON")
                .with_source(err)
                .into_response(),
        }
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Json(value)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    async fn parts(res: Response) -> (StatusCode, Option<String>, Bytes) {
        let status = res.status();
        let content_type = res
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| value.to_str().unwrap().to_owned());
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, body)
    }

    const TEXT_TYPE: Option<&str> = Some("text/plain; charset=utf-8");
    const OCTET_TYPE: Option<&str> = Some("application/octet-stream");
    const JSON_TYPE: Option<&str> = Some("application/json");

    async fn check(res: impl IntoResponse, status: StatusCode, ty: Option<&str>, body: &str) {
        let (s, t, b) = parts(res.into_response()).await;
        assert_eq!((s, t.as_deref(), &b[..]), (status, ty, body.as_bytes()));
    }

    #[tokio::test]
    async fn every_impl_answers_as_documented() {
        let ok = StatusCode::OK;
        check(String::from("hi"), ok, TEXT_TYPE, "hi").await;
        check("hi", ok, TEXT_TYPE, "hi").await;
        check(Cow::Borrowed("hi"), ok, TEXT_TYPE, "hi").await;
        check(Cow::<'static, str>::Owned("hi".into()), ok, TEXT_TYPE, "hi").await;
        check(vec![b'a', b'b'], ok, OCTET_TYPE, "ab").await;
        check(&b"ab"[..], ok, OCTET_TYPE, "ab").await;
        check(Bytes::from_static(b"ab"), ok, OCTET_TYPE, "ab").await;
        check((), ok, None, "").await;
        check(Body::from("raw"), ok, None, "raw").await;
        check(StatusCode::NO_CONTENT, StatusCode::NO_CONTENT, None, "").await;
        check(
            (StatusCode::CREATED, "made"),
            StatusCode::CREATED,
            TEXT_TYPE,
            "made",
        )
        .await;
        check(
            Json(serde_json::json!({"a": 1})),
            ok,
            JSON_TYPE,
            r#"{"a":1}"#,
        )
        .await;
        let custom = http::Response::builder()
            .status(StatusCode::ACCEPTED)
            .header(CONTENT_TYPE, "text/csv")
            .body(http_body_util::Full::new(Bytes::from("a,b")))
            .unwrap();
        check(custom, StatusCode::ACCEPTED, Some("text/csv"), "a,b").await;
        check(Ok::<_, Error>("fine"), ok, TEXT_TYPE, "fine").await;
    }

    #[tokio::test]
    async fn errors_are_json_with_their_status() {
        let err: Result<&str, std::io::Error> = Err(std::io::Error::other("disk full"));
        check(
            err,
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON_TYPE,
            r#"{"error":"disk full"}"#,
        )
        .await;
        let err: Result<(), Error> = Err(Error::status(StatusCode::FORBIDDEN, "no access"));
        check(
            err,
            StatusCode::FORBIDDEN,
            JSON_TYPE,
            r#"{"error":"no access"}"#,
        )
        .await;
        let res = Error::msg("boom").into_response();
        assert_eq!(res.extensions().get::<ErrorMessage>().unwrap().0, "boom");
    }

    #[tokio::test]
    async fn unserialisable_json_is_a_500() {
        let mut map = std::collections::HashMap::new();
        map.insert(vec![1u8], 1); // JSON keys must be strings
        let (status, ty, body) = parts(Json(map).into_response()).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(ty.as_deref(), JSON_TYPE);
        assert!(String::from_utf8_lossy(&body).contains("cannot serialise"));
    }

    #[tokio::test]
    async fn json_parses_bodies() {
        let Json(value): Json<Vec<u32>> = Json::from_body(Body::from("[1,2]")).await.unwrap();
        assert_eq!(value, vec![1, 2]);
        let err = Json::<Vec<u32>>::from_body(Body::from("[1,"))
            .await
            .unwrap_err();
        assert_eq!(err.status_code(), StatusCode::BAD_REQUEST);
    }
}
