//! The one error type of faas-core and its one mapping to HTTP statuses.

use std::fmt;

use http::StatusCode;

/// A boxed error source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, in terms a caller (and the gateway) can act on.
///
/// Every kind maps to exactly one HTTP status through [`ErrorKind::status`]; that mapping is the only
/// place in the platform where errors become statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The function, secret, namespace or call does not exist (404).
    NotFound,
    /// The function or secret already exists (409).
    AlreadyExists,
    /// The request is malformed or a field is invalid (400).
    InvalidInput,
    /// Credentials are missing or wrong (401).
    Unauthorized,
    /// A body or header is over the configured limit (413).
    PayloadTooLarge,
    /// Too many requests in flight (429).
    TooManyRequests,
    /// The backend (Docker, NATS, a function replica) cannot be reached (503 for the platform's own
    /// backends; the invoker uses [`ErrorKind::BadGateway`] for a function that cannot be reached).
    Unavailable,
    /// A function could not be reached or answered garbage (502).
    BadGateway,
    /// The operation or the function ran out of time (504).
    Timeout,
    /// The backend answered with an error that is not the caller's fault (500).
    Backend,
    /// A bug or an unexpected state in faas-rs itself (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status the gateway answers with for this kind.
    ///
    /// ```
    /// use faas_core::ErrorKind;
    /// assert_eq!(ErrorKind::NotFound.status(), http::StatusCode::NOT_FOUND);
    /// ```
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::AlreadyExists => StatusCode::CONFLICT,
            ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Backend | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short lowercase name of the kind (`"not found"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::PayloadTooLarge => "payload too large",
            ErrorKind::TooManyRequests => "too many requests",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::BadGateway => "bad gateway",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Backend => "backend error",
            ErrorKind::Internal => "internal error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every faas-core API: a [`kind`](Error::kind), a message, optionally the request
/// field to blame and the underlying source.
///
/// Backend crates keep their own `thiserror` enums and convert into this type, choosing the kind.
///
/// ```
/// use faas_core::{Error, ErrorKind};
/// let err = Error::invalid("service", "function name must be a DNS-1123 label");
/// assert_eq!(err.kind(), ErrorKind::InvalidInput);
/// assert_eq!(err.field(), Some("service"));
/// assert_eq!(err.to_string(), "function name must be a DNS-1123 label");
/// ```
pub struct Error {
    kind: ErrorKind,
    message: String,
    field: Option<String>,
    source: Option<BoxError>,
}

impl Error {
    /// An error of `kind` with a message (lowercase, no trailing period).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            field: None,
            source: None,
        }
    }

    /// An [`ErrorKind::InvalidInput`] error blaming a request field (`"service"`, `"envVars.FOO"`).
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message).with_field(field)
    }

    /// An [`ErrorKind::NotFound`] error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// An [`ErrorKind::AlreadyExists`] error.
    pub fn already_exists(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::AlreadyExists, message)
    }

    /// An [`ErrorKind::Unavailable`] error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// An [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }

    /// Sets the request field to blame.
    #[must_use]
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Sets the underlying cause (shown by `source()`, not by `Display`).
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The request field to blame, if any.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The HTTP status of this error (see [`ErrorKind::status`]).
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The JSON body the gateway answers with: `{"error": "...", "field": "..."}`.
    ///
    /// The message includes the source chain, since a client has no other way to see it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut message = self.message.clone();
        let mut source = self
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        match &self.field {
            Some(field) => serde_json::json!({ "error": message, "field": field }),
            None => serde_json::json!({ "error": message }),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(field) = &self.field {
            d.field("field", field);
        }
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidInput, "malformed JSON").with_source(err)
    }
}

/// The result type of faas-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_one_status() {
        assert_eq!(ErrorKind::AlreadyExists.status(), StatusCode::CONFLICT);
        assert_eq!(ErrorKind::InvalidInput.status(), StatusCode::BAD_REQUEST);
        assert_eq!(ErrorKind::Timeout.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(ErrorKind::BadGateway.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(
            ErrorKind::Unavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn json_names_the_field_and_includes_the_source() {
        let io = std::io::Error::other("disk full");
        let err = Error::invalid("image", "image is required").with_source(io);
        assert_eq!(err.to_string(), "image is required");
        assert_eq!(
            err.to_json(),
            serde_json::json!({"error": "image is required: disk full", "field": "image"})
        );
    }
}
