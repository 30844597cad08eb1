//! The `Http_*` environment of fork-mode processes, named as OpenFaaS's watchdogs name it.

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts;

/// Go's canonical MIME header key: `x-call-id` becomes `X-Call-Id`.
pub(crate) fn canonical_header_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if upper {
            out.push(c.to_ascii_uppercase());
        } else {
            out.push(c.to_ascii_lowercase());
        }
        upper = c == '-';
    }
    out
}

/// Decodes `%XX` escapes as Go's `URL.Path` does (invalid escapes are kept as they are).
pub(crate) fn percent_decode(s: &str) -> String {
    if !s.contains('%') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The variables for one request. `classic` adds what only the classic watchdog sets
/// (`Http_ContentLength`, `Http_Content_Length`, `Http_Host`).
pub(crate) fn request_env(parts: &Parts, classic: bool) -> Vec<(String, String)> {
    let mut env = Vec::with_capacity(parts.headers.keys_len() + 6);
    for name in parts.headers.keys() {
        if name == HOST || name == TRANSFER_ENCODING || (classic && name == CONTENT_LENGTH) {
            continue;
        }
        // Go keeps the first value of a repeated header.
        let Some(value) = parts.headers.get(name) else {
            continue;
        };
        let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
            continue;
        };
        let key = format!(
            "Http_{}",
            canonical_header_name(name.as_str()).replace('-', "_")
        );
        env.push((key, value.to_owned()));
    }
    env.push(("Http_Method".to_owned(), parts.method.as_str().to_owned()));
    if classic {
        let length = content_length(parts).map_or_else(|| "-1".to_owned(), |n| n.to_string());
        env.push(("Http_ContentLength".to_owned(), length.clone()));
        env.push(("Http_Content_Length".to_owned(), length));
    }
    if let Some(te) = parts
        .headers
        .get(TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
    {
        env.push((
            "Http_Transfer_Encoding".to_owned(),
            te.split(',').next().unwrap_or(te).trim().to_owned(),
        ));
    }
    if let Some(query) = parts.uri.query().filter(|q| !q.is_empty()) {
        env.push(("Http_Query".to_owned(), query.to_owned()));
    }
    let path = parts.uri.path();
    if !path.is_empty() {
        env.push(("Http_Path".to_owned(), percent_decode(path)));
    }
    if classic {
        let host = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()));
        if let Some(host) = host.filter(|h| !h.is_empty()) {
            env.push(("Http_Host".to_owned(), host.to_owned()));
        }
    }
    env
}

/// The request's length as Go computes `Request.ContentLength`: the header, 0 for a request
/// without body, or unknown (`None`, printed as -1) when chunked.
fn content_length(parts: &Parts) -> Option<u64> {
    if parts.headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    match parts.headers.get(CONTENT_LENGTH) {
        Some(v) => v.to_str().ok()?.trim().parse().ok(),
        None => Some(0),
    }
}

/// The classic watchdog's `marshal_request` document:
/// `{"header":{"Name":["value"]},"body":{"raw":"<base64>"}}`.
pub(crate) fn marshal_request(parts: &Parts, body: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let mut names: Vec<String> = parts
        .headers
        .keys()
        .map(|n| canonical_header_name(n.as_str()))
        .collect();
    names.sort();
    names.dedup();
    let mut out = String::with_capacity(64 + body.len() * 4 / 3);
    out.push_str("{\"header\":{");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(&mut out, name);
        out.push_str(":[");
        for (j, value) in parts.headers.get_all(name.as_str()).iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            json_string(&mut out, &String::from_utf8_lossy(value.as_bytes()));
        }
        out.push(']');
    }
    out.push_str("},\"body\":{\"raw\":\"");
    out.push_str(&base64::engine::general_purpose::STANDARD.encode(body));
    out.push_str("\"}}");
    out.into_bytes()
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '<' || c == '>' || c == '&' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::Request<()>) -> Parts {
        req.into_parts().0
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_header_name("x-call-id"), "X-Call-Id");
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(canonical_header_name("X-FORWARDED-FOR"), "X-Forwarded-For");
    }

    #[test]
    fn classic_env_matches_the_classic_watchdog() {
        let p = parts(
            http::Request::post("/fn/a%20b?x=1&y=2")
                .header("Host", "gw:8080")
                .header("Content-Type", "text/plain")
                .header("X-Call-Id", "abc")
                .header("Content-Length", "5")
                .body(())
                .unwrap(),
        );
        let env = request_env(&p, true);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("Http_Content_Type"), Some("text/plain"));
        assert_eq!(get("Http_X_Call_Id"), Some("abc"));
        assert_eq!(get("Http_Method"), Some("POST"));
        assert_eq!(get("Http_Query"), Some("x=1&y=2"));
        assert_eq!(get("Http_Path"), Some("/fn/a b"));
        assert_eq!(get("Http_ContentLength"), Some("5"));
        assert_eq!(get("Http_Content_Length"), Some("5"));
        assert_eq!(get("Http_Host"), Some("gw:8080"));
        assert_eq!(
            env.iter()
                .filter(|(n, _)| n == "Http_Content_Length")
                .count(),
            1
        );
    }

    #[test]
    fn of_watchdog_env_has_no_host_or_length_extras() {
        let p = parts(
            http::Request::get("/")
                .header("Host", "h")
                .header("Transfer-Encoding", "chunked")
                .body(())
                .unwrap(),
        );
        let env = request_env(&p, false);
        assert!(
            env.iter()
                .all(|(n, _)| n != "Http_Host" && n != "Http_ContentLength")
        );
        assert!(env.contains(&("Http_Transfer_Encoding".to_owned(), "chunked".to_owned())));
        assert!(env.iter().all(|(n, _)| n != "Http_Query"));
    }

    #[test]
    fn marshal_request_document() {
        let p = parts(
            http::Request::post("/")
                .header("Content-Type", "text/plain")
                .body(())
                .unwrap(),
        );
        let doc = String::from_utf8(marshal_request(&p, b"hi")).unwrap();
        assert_eq!(
            doc,
            r#"{"header":{"Content-Type":["text/plain"]},"body":{"raw":"aGk="}}"#
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%2Fb%zz"), "/a/b%zz");
        assert_eq!(percent_decode("/plain"), "/plain");
    }
}
