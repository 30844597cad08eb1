//! [`Body`]: the body of requests and responses, buffered or streaming.

use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, BodyStream, Full, StreamBody};
use serde::de::DeserializeOwned;

use faas_watchdog::server::{RequestBody, RequestBodyError};

use crate::error::{BoxError, Error};

/// The body of a [`Request`](crate::Request) or a [`Response`](crate::Response).
///
/// It is either empty, a buffer, the streaming body of an incoming HTTP request, or any other
/// [`http_body::Body`] (a stream, an axum body). It implements [`http_body::Body`] itself, so it can be
/// read as a stream of frames, and [`Body::bytes`] / [`Body::json`] buffer it.
///
/// ```
/// # async fn demo() -> faas::Result<()> {
/// let body = faas::Body::from("{\"name\":\"faas\"}");
/// let value: serde_json::Value = body.json().await?;
/// assert_eq!(value["name"], "faas");
/// # Ok(()) }
/// ```
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Incoming(hyper::body::Incoming),
    Served(RequestBody),
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl Body {
    /// An empty body.
    pub const fn empty() -> Self {
        Body { kind: Kind::Empty }
    }

    /// Wraps any [`http_body::Body`] whose data is [`Bytes`] (an axum or hyper body, a stream body).
    pub fn new<B>(body: B) -> Self
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // Avoid double boxing: a `Body` passed in generically is taken as is.
        let mut body = Some(body);
        if let Some(this) = (&mut body as &mut dyn std::any::Any).downcast_mut::<Option<Body>>() {
            return this.take().unwrap_or_default();
        }
        let body =
            body.unwrap_or_else(|| unreachable!("the body was only taken when it is a `Body`"));
        Body {
            kind: Kind::Boxed(UnsyncBoxBody::new(body.map_err(Into::into))),
        }
    }

    /// A streaming body sending each item of `stream` as a data frame as soon as it is produced.
    ///
    /// ```
    /// let chunks = futures_util::stream::iter(["a", "b"].map(|s| Ok::<_, std::io::Error>(s)));
    /// let body = faas::Body::from_stream(chunks);
    /// ```
    pub fn from_stream<S, D, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<D, E>> + Send + 'static,
        D: Into<Bytes>,
        E: Into<BoxError> + 'static,
    {
        let frames = stream
            .map_ok(|data| Frame::data(data.into()))
            .map_err(Into::into);
        Body {
            kind: Kind::Boxed(UnsyncBoxBody::new(StreamBody::new(frames))),
        }
    }

    /// The body as a stream of data chunks, each as soon as it arrives (trailers are skipped).
    ///
    /// A failed read is an [`Error`] with the status [`Body::bytes`] gives it (413 over the body
    /// limit, 408 too slow, else 400), so `?` works on each chunk in a handler.
    ///
    /// ```
    /// use futures_util::StreamExt;
    ///
    /// async fn count(req: faas::Request) -> faas::Result<String> {
    ///     let mut chunks = std::pin::pin!(req.into_body().into_data_stream());
    ///     let mut total = 0;
    ///     while let Some(chunk) = chunks.next().await {
    ///         total += chunk?.len();
    ///     }
    ///     Ok(format!("{total} bytes"))
    /// }
    /// ```
    pub fn into_data_stream(self) -> impl Stream<Item = Result<Bytes, Error>> + Send {
        TryStreamExt::map_err(BodyStream::new(self), read_error)
            .try_filter_map(|frame| std::future::ready(Ok(frame.into_data().ok())))
    }

    /// Reads the whole body into memory.
    ///
    /// # Errors
    ///
    /// A `400 Bad Request` error when the body cannot be read (the client went away or sent a
    /// malformed body, or it is larger than the limit the server was configured with).
    pub async fn bytes(self) -> Result<Bytes, Error> {
        if let Kind::Full(data) = self.kind {
            return Ok(data.unwrap_or_default());
        }
        match BodyExt::collect(self).await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) => Err(read_error(err)),
        }
    }

    /// Reads the whole body as UTF-8 text.
    ///
    /// # Errors
    ///
    /// A `400 Bad Request` error when the body cannot be read or is not UTF-8.
    pub async fn text(self) -> Result<String, Error> {
        let bytes = self.bytes().await?;
        String::from_utf8(bytes.into()).map_err(|err| {
            Error::status(
                http::StatusCode::BAD_REQUEST,
                "the request body is not UTF-8",
            )
            .with_source(err)
        })
    }

    /// Reads the whole body and parses it as JSON.
    ///
    /// # Errors
    ///
    /// A `400 Bad Request` error when the body cannot be read or is not valid JSON for `T`; the
    /// message is serde's (`missing field `name` at line 1 column 2`).
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, Error> {
        let bytes = self.bytes().await?;
        parse_json(&bytes)
    }
}

/// The error of a failed body read: over the limit (413) or too slow (408) as the server judged
/// it, else 400.
fn read_error(err: BoxError) -> Error {
    let status = err
        .downcast_ref::<RequestBodyError>()
        .map_or(http::StatusCode::BAD_REQUEST, RequestBodyError::status);
    Error::status(status, "cannot read the request body").with_source(err)
}

/// Parses `bytes` as JSON into `T`, with a 400 error carrying serde's message.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|err| {
        Error::status(
            http::StatusCode::BAD_REQUEST,
            format!("invalid JSON: {err}"),
        )
    })
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "full",
            Kind::Incoming(_) | Kind::Served(_) => "incoming",
            Kind::Boxed(_) => "boxed",
        };
        f.debug_struct("Body").field("kind", &kind).finish()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            Kind::Incoming(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Kind::Served(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            Kind::Boxed(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(data) => data.is_none(),
            Kind::Incoming(body) => body.is_end_stream(),
            Kind::Served(body) => body.is_end_stream(),
            Kind::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Incoming(body) => body.size_hint(),
            Kind::Served(body) => body.size_hint(),
            Kind::Boxed(body) => body.size_hint(),
        }
    }
}

impl From<hyper::body::Incoming> for Body {
    fn from(body: hyper::body::Incoming) -> Self {
        Body {
            kind: Kind::Incoming(body),
        }
    }
}

/// The body of a request served by [`run`](crate::run): streamed, with the server's body limit
/// and read timeout.
impl From<RequestBody> for Body {
    fn from(body: RequestBody) -> Self {
        Body {
            kind: Kind::Served(body),
        }
    }
}

impl From<Bytes> for Body {
    fn from(data: Bytes) -> Self {
        if data.is_empty() {
            Body::empty()
        } else {
            Body {
                kind: Kind::Full(Some(data)),
            }
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(data: Vec<u8>) -> Self {
        Body::from(Bytes::from(data))
    }
}

impl From<String> for Body {
    fn from(data: String) -> Self {
        Body::from(Bytes::from(data))
    }
}

impl From<&'static str> for Body {
    fn from(data: &'static str) -> Self {
        Body::from(Bytes::from_static(data.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(data: &'static [u8]) -> Self {
        Body::from(Bytes::from_static(data))
    }
}

impl From<()> for Body {
    fn from((): ()) -> Self {
        Body::empty()
    }
}

impl From<Full<Bytes>> for Body {
    fn from(body: Full<Bytes>) -> Self {
        Body::new(body)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test]
    async fn buffers_every_kind() {
        assert_eq!(Body::empty().bytes().await.unwrap(), "");
        assert_eq!(Body::from("abc").bytes().await.unwrap(), "abc");
        assert_eq!(
            Body::new(Full::new(Bytes::from("xyz")))
                .text()
                .await
                .unwrap(),
            "xyz"
        );
        let stream = futures_util::stream::iter(["a", "b", "c"].map(Ok::<_, std::io::Error>));
        assert_eq!(Body::from_stream(stream).bytes().await.unwrap(), "abc");
    }

    #[tokio::test]
    async fn a_body_is_not_boxed_twice() {
        let body = Body::new(Body::from("abc"));
        assert!(matches!(body.kind, Kind::Full(_)));
    }

    #[tokio::test]
    async fn streams_chunks_in_order() {
        let stream = futures_util::stream::iter(["1", "2"].map(Ok::<_, std::io::Error>));
        let chunks: Vec<_> = Body::from_stream(stream)
            .into_data_stream()
            .map(|chunk| chunk.unwrap())
            .collect()
            .await;
        assert_eq!(chunks, vec![Bytes::from("1"), Bytes::from("2")]);
    }

    #[tokio::test]
    async fn a_failed_chunk_is_an_error_with_a_status() {
        let stream =
            futures_util::stream::iter([Ok("a"), Err(std::io::Error::other("connection reset"))]);
        let mut chunks = std::pin::pin!(Body::from_stream(stream).into_data_stream());
        assert_eq!(chunks.next().await.unwrap().unwrap(), "a");
        let err = chunks.next().await.unwrap().unwrap_err();
        assert_eq!(err.status_code(), http::StatusCode::BAD_REQUEST);
        assert_eq!(
            err.full_message(),
            "cannot read the request body: connection reset"
        );
    }

    #[tokio::test]
    async fn bad_json_is_400_with_serde_message() {
        #[derive(Debug, serde::Deserialize)]
        struct Named {
            #[allow(dead_code)]
            name: String,
        }
        let err = Body::from("{}").json::<Named>().await.unwrap_err();
        assert_eq!(err.status_code(), http::StatusCode::BAD_REQUEST);
        assert!(
            err.message().contains("missing field `name`"),
            "{}",
            err.message()
        );
        let err = Body::from(vec![0xff, 0xfe]).text().await.unwrap_err();
        assert_eq!(err.status_code(), http::StatusCode::BAD_REQUEST);
    }
}
