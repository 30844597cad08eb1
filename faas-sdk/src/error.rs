//! [`Error`]: what a handler returns when it fails, and what the SDK's own APIs return.

use std::fmt;

use http::StatusCode;

/// A boxed error, the error type of [`Body`](crate::Body) and of most of the tower ecosystem.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of the SDK and of handlers (`async fn f(..) -> faas::Result<T>`).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error that becomes an HTTP response: a status (500 unless set), a message and an optional
/// source.
///
/// Any `std::error::Error + Send + Sync + 'static` converts into it, so `?` works on I/O, serde or
/// HTTP client errors in a handler; such an error answers `500` with the JSON body
/// `{"error": "message: source"}`. [`Error::status`] picks the status; a `faas_core::Error` keeps the
/// status of its kind.
///
/// Like `anyhow::Error`, this type does not implement `std::error::Error` itself: that is what
/// allows the blanket conversion from every error type (a type cannot both implement the trait and
/// convert from every implementor). It converts into a [`BoxError`] when one is needed.
///
/// ```
/// use faas::{Error, IntoResponse, StatusCode};
///
/// let err = Error::status(StatusCode::NOT_FOUND, "no such user");
/// assert_eq!(err.status_code(), StatusCode::NOT_FOUND);
///
/// fn parse(s: &str) -> faas::Result<u32> {
///     Ok(s.parse::<u32>()?) // a ParseIntError becomes a 500 error
/// }
/// assert_eq!(parse("x").unwrap_err().status_code(), StatusCode::INTERNAL_SERVER_ERROR);
/// ```
pub struct Error {
    status: StatusCode,
    message: String,
    source: Option<BoxError>,
}

impl Error {
    /// An error answering `status` with `message` (lowercase, no trailing period).
    pub fn status(status: StatusCode, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
            source: None,
        }
    }

    /// A `500 Internal Server Error` with `message`.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::status(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A `400 Bad Request` with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::status(StatusCode::BAD_REQUEST, message)
    }

    /// A `404 Not Found` with `message`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::status(StatusCode::NOT_FOUND, message)
    }

    /// Converts a boxed error (the error of a [`Body`](crate::Body) frame, of a tower middleware)
    /// into an `Error`, which `?` cannot do: a [`BoxError`] is not itself a `std::error::Error`.
    ///
    /// An `Error` that was boxed comes back as it was; a `faas_core::Error` keeps its kind's status;
    /// any other error answers 500 with its message.
    ///
    /// ```
    /// use faas::{BoxError, Error, StatusCode};
    ///
    /// let boxed: BoxError = Error::not_found("no such user").into();
    /// assert_eq!(Error::from_boxed(boxed).status_code(), StatusCode::NOT_FOUND);
    /// let boxed: BoxError = "connection reset".into();
    /// let err = Error::from_boxed(boxed);
    /// assert_eq!((err.status_code(), err.message()), (StatusCode::INTERNAL_SERVER_ERROR, "connection reset"));
    /// ```
    pub fn from_boxed(err: BoxError) -> Self {
        let err = match err.downcast::<StdError>() {
            Ok(err) => return err.0,
            Err(err) => err,
        };
        let status = match err.downcast_ref::<faas_core::Error>() {
            Some(core) => core.status(),
            None => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Error {
            status,
            message: err.to_string(),
            source: Some(err),
        }
    }

    /// Sets the underlying cause; it is appended to the message in the JSON body.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The HTTP status this error answers with.
    pub fn status_code(&self) -> StatusCode {
        self.status
    }

    /// The message, without the source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The underlying cause, if any.
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }

    /// The message followed by the chain of sources, `": "`-separated.
    pub fn full_message(&self) -> String {
        let mut message = self.message.clone();
        let mut source = self
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(err) = source {
            let text = err.to_string();
            // A source whose text is already the message (an error converted with `?`) adds nothing.
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = err.source();
        }
        message
    }

    /// The JSON body of the error response: `{"error": "message: source"}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.full_message() })
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        Error::from_boxed(Box::new(err))
    }
}

impl From<Error> for BoxError {
    fn from(err: Error) -> Self {
        Box::new(StdError(err))
    }
}

/// [`Error`] seen as a `std::error::Error` (see [`From<Error> for BoxError`](Error)).
struct StdError(Error);

impl fmt::Debug for StdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for StdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("status", &self.status)
            .field("message", &self.message);
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn std_errors_become_500_with_their_message() {
        let err = Error::from(std::io::Error::other("disk full"));
        assert_eq!(err.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.to_string(), "disk full");
        assert_eq!(err.to_json(), serde_json::json!({"error": "disk full"}));
    }

    #[test]
    fn core_errors_keep_their_status() {
        let err = Error::from(faas_core::Error::not_found("function \"x\" not found"));
        assert_eq!(err.status_code(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn boxed_errors_convert_back() {
        let original = Error::status(StatusCode::CONFLICT, "taken")
            .with_source(std::io::Error::other("row exists"));
        let back = Error::from_boxed(BoxError::from(original));
        assert_eq!(back.status_code(), StatusCode::CONFLICT);
        assert_eq!(back.full_message(), "taken: row exists");

        let core: BoxError = Box::new(faas_core::Error::not_found("function \"x\" not found"));
        assert_eq!(Error::from_boxed(core).status_code(), StatusCode::NOT_FOUND);

        let other = Error::from_boxed(BoxError::from("connection reset"));
        assert_eq!(other.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            other.to_json(),
            serde_json::json!({"error": "connection reset"})
        );
    }

    #[test]
    fn the_source_chain_is_in_the_json() {
        let err = Error::status(StatusCode::BAD_GATEWAY, "upstream failed")
            .with_source(std::io::Error::other("connection refused"));
        assert_eq!(
            err.to_json(),
            serde_json::json!({"error": "upstream failed: connection refused"})
        );
        let boxed = BoxError::from(err);
        assert_eq!(boxed.to_string(), "upstream failed");
        assert_eq!(boxed.source().unwrap().to_string(), "connection refused");
    }
}
