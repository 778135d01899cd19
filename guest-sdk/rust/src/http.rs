//! HTTP: the JSON of abi.HTTPRequest / abi.HTTPResponse, used by activities
//! (`ActivityContext::http`) and durable HTTP (`OrchestrationContext::call_http`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An HTTP request (abi.HTTPRequest). The body travels base64-encoded.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// GET, POST, …
    pub method: String,
    /// Absolute URL; its host must be in the module's allowlist.
    pub url: String,
    /// Request headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// The body, base64 (see [`HttpRequest::with_body`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub body: String,
}

impl HttpRequest {
    /// A GET of `url`.
    pub fn get(url: &str) -> HttpRequest {
        HttpRequest { method: "GET".into(), url: url.into(), ..Default::default() }
    }

    /// A POST of `body` to `url`.
    pub fn post(url: &str, body: &[u8]) -> HttpRequest {
        HttpRequest { method: "POST".into(), url: url.into(), ..Default::default() }.with_body(body)
    }

    /// Sets the body.
    pub fn with_body(mut self, body: &[u8]) -> HttpRequest {
        self.body = base64_encode(body);
        self
    }

    /// Adds a header.
    pub fn header(mut self, k: &str, v: &str) -> HttpRequest {
        self.headers.insert(k.into(), v.into());
        self
    }
}

/// An HTTP response (abi.HTTPResponse): any status is a response; `error` is
/// set instead when the request was refused, timed out or failed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status code.
    #[serde(default)]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body, base64.
    #[serde(default)]
    pub body: String,
    /// Why there is no response.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl HttpResponse {
    /// The decoded body.
    pub fn body_bytes(&self) -> Vec<u8> {
        base64_decode(&self.body).unwrap_or_default()
    }

    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body_bytes()).into_owned()
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (what Go's encoding/json uses for []byte).
pub fn base64_encode(b: &[u8]) -> String {
    let mut out = String::with_capacity((b.len() + 2) / 3 * 4);
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); None when malformed.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for ch in s.bytes() {
        if ch == b'=' {
            break;
        }
        let v = B64.iter().position(|&c| c == ch)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar"] {
            let e = base64_encode(s.as_bytes());
            assert_eq!(base64_decode(&e).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }
}
