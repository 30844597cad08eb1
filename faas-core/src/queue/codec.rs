//! The binary form of a [`QueuedRequest`]: length-prefixed fields, the body last and verbatim.
//!
//! ```text
//! u8 version (1)
//! str call_id, str function, str namespace, str method, str path
//! opt query, u32 header count, (str, str)*, opt callback_url
//! i64 queued_at seconds, u32 nanoseconds
//! u64 body length, body
//! ```
//! `str` is a u32 length then UTF-8 bytes, `opt` a u8 flag then a `str`; integers little-endian.

use bytes::{Buf, Bytes};
use chrono::DateTime;

use super::QueuedRequest;
use crate::{Error, ErrorKind, Result};

const VERSION: u8 = 1;

pub(super) fn encoded_len(r: &QueuedRequest) -> usize {
    let s = |v: &str| 4 + v.len();
    let o = |v: &Option<String>| 1 + v.as_deref().map_or(0, s);
    1 + s(&r.call_id)
        + s(&r.function)
        + s(&r.namespace)
        + s(&r.method)
        + s(&r.path)
        + o(&r.query)
        + 4
        + r.headers.iter().map(|(k, v)| s(k) + s(v)).sum::<usize>()
        + o(&r.callback_url)
        + 12
        + 8
        + r.body.len()
}

pub(super) fn encode(r: &QueuedRequest) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(r));
    encode_into(r, &mut out);
    out
}

pub(super) fn encode_into(r: &QueuedRequest, out: &mut Vec<u8>) {
    fn put_str(out: &mut Vec<u8>, v: &str) {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    fn put_opt(out: &mut Vec<u8>, v: &Option<String>) {
        match v {
            Some(v) => {
                out.push(1);
                put_str(out, v);
            }
            None => out.push(0),
        }
    }
    out.push(VERSION);
    put_str(out, &r.call_id);
    put_str(out, &r.function);
    put_str(out, &r.namespace);
    put_str(out, &r.method);
    put_str(out, &r.path);
    put_opt(out, &r.query);
    out.extend_from_slice(&(r.headers.len() as u32).to_le_bytes());
    for (k, v) in &r.headers {
        put_str(out, k);
        put_str(out, v);
    }
    put_opt(out, &r.callback_url);
    out.extend_from_slice(&r.queued_at.timestamp().to_le_bytes());
    out.extend_from_slice(&r.queued_at.timestamp_subsec_nanos().to_le_bytes());
    out.extend_from_slice(&(r.body.len() as u64).to_le_bytes());
    out.extend_from_slice(&r.body);
}

fn corrupt(what: &str) -> Error {
    Error::new(
        ErrorKind::Backend,
        format!("corrupt queued request: {what}"),
    )
}

struct Reader {
    buf: Bytes,
}

impl Reader {
    fn need(&self, n: usize, what: &str) -> Result<()> {
        if self.buf.remaining() < n {
            Err(corrupt(what))
        } else {
            Ok(())
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        self.need(1, what)?;
        Ok(self.buf.get_u8())
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        self.need(4, what)?;
        Ok(self.buf.get_u32_le())
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u32(what)? as usize;
        self.need(len, what)?;
        let raw = self.buf.split_to(len);
        String::from_utf8(raw.to_vec()).map_err(|_| corrupt(what))
    }

    fn opt(&mut self, what: &str) -> Result<Option<String>> {
        match self.u8(what)? {
            0 => Ok(None),
            1 => self.string(what).map(Some),
            _ => Err(corrupt(what)),
        }
    }
}

pub(super) fn decode(buf: Bytes) -> Result<QueuedRequest> {
    let mut r = Reader { buf };
    if r.u8("version")? != VERSION {
        return Err(corrupt("unknown version"));
    }
    let call_id = r.string("call id")?;
    let function = r.string("function")?;
    let namespace = r.string("namespace")?;
    let method = r.string("method")?;
    let path = r.string("path")?;
    let query = r.opt("query")?;
    let count = r.u32("header count")? as usize;
    let mut headers = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let k = r.string("header name")?;
        let v = r.string("header value")?;
        headers.push((k, v));
    }
    let callback_url = r.opt("callback url")?;
    r.need(12, "queued at")?;
    let secs = r.buf.get_i64_le();
    let nanos = r.buf.get_u32_le();
    let queued_at = DateTime::from_timestamp(secs, nanos).ok_or_else(|| corrupt("queued at"))?;
    r.need(8, "body length")?;
    let len = usize::try_from(r.buf.get_u64_le()).map_err(|_| corrupt("body length"))?;
    r.need(len, "body")?;
    let body = r.buf.split_to(len);
    Ok(QueuedRequest {
        call_id,
        function,
        namespace,
        method,
        path,
        query,
        headers,
        body,
        callback_url,
        queued_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_field() {
        let r = QueuedRequest::new("echo", "openfaas-fn")
            .with_method("PUT")
            .with_path("/a/b")
            .with_query("x=1&y=2")
            .with_header("Content-Type", "text/plain")
            .with_header("X-Custom", "ü")
            .with_callback_url("http://127.0.0.1:9/cb")
            .with_body(vec![0u8, 1, 2, 255]);
        let bytes = encode(&r);
        assert_eq!(bytes.len(), encoded_len(&r));
        assert_eq!(decode(Bytes::from(bytes)).unwrap(), r);
        let bare = QueuedRequest::new("f", "ns");
        assert_eq!(decode(Bytes::from(encode(&bare))).unwrap(), bare);
    }

    #[test]
    fn truncated_input_is_an_error() {
        let r = QueuedRequest::new("echo", "ns").with_body("hello");
        let bytes = encode(&r);
        for cut in [0, 1, 5, bytes.len() - 1] {
            let err = decode(Bytes::copy_from_slice(&bytes[..cut])).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Backend);
        }
    }
}
