//! `static` mode: files under `static_path`.

use std::path::{Path, PathBuf};

use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::body::{ReaderBody, WatchdogBody};
use crate::cgi::percent_decode;
use crate::server::{RequestBody, internal_response};

/// Resolves a request path under `root`, refusing anything that would leave it.
pub(crate) fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(request_path);
    let mut full = root.to_path_buf();
    for part in decoded.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p if p.contains('\0') || p.contains('\\') => return None,
            p => full.push(p),
        }
    }
    Some(full)
}

fn content_type(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "webp" => "image/webp",
        "wasm" => "application/wasm",
        "xml" => "text/xml; charset=utf-8",
        "pdf" => "application/pdf",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Serves one request from `root`.
pub(crate) async fn handle(root: &Path, req: Request<RequestBody>) -> Response<WatchdogBody> {
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        return internal_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: static files answer GET and HEAD",
        );
    }
    let not_found = || internal_response(StatusCode::NOT_FOUND, "404 page not found");
    let Some(mut path) = resolve(root, req.uri().path()) else {
        return not_found();
    };
    let Ok(mut meta) = tokio::fs::metadata(&path).await else {
        return not_found();
    };
    if meta.is_dir() {
        path.push("index.html");
        match tokio::fs::metadata(&path).await {
            Ok(m) if m.is_file() => meta = m,
            _ => return not_found(),
        }
    }
    if !meta.is_file() {
        return not_found();
    }
    let len = meta.len();
    let body = if head {
        WatchdogBody::Full(None)
    } else {
        match tokio::fs::File::open(&path).await {
            Ok(file) => WatchdogBody::File(ReaderBody::new(file, Some(len))),
            Err(_) => return not_found(),
        }
    };
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type(&path)));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_root() {
        let root = Path::new("/srv");
        assert_eq!(
            resolve(root, "/a/b.txt"),
            Some(PathBuf::from("/srv/a/b.txt"))
        );
        assert_eq!(resolve(root, "/"), Some(PathBuf::from("/srv")));
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a/%2e%2e/%2e%2e/x"), None);
    }
}
