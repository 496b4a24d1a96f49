//! One rendered HTTP answer kept for many requests: its body, gzipped once,
//! and a strong ETag, sent to each client as it accepts it (gzip or not,
//! 304 when it has the answer already). The public status pages
//! ([`crate::statuspage`]) and the signed-in pages ([`crate::web`]) keep
//! answers of this kind, so a kept answer costs a client no render and no
//! compression.
//!
//! It owns the encoding, the validator and the headers that go with them;
//! it must not decide how long an answer is kept nor who may see it (its
//! callers' caches do).

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One rendered answer, also gzipped once for every client that accepts it
/// (compressing per request would cost more than rendering, under a flood).
#[derive(Debug)]
pub struct Rendered {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Bytes,
    /// A strong validator of `body`, quoted as the header carries it.
    pub etag: String,
    /// `body` gzipped, when it is worth it.
    pub gzip: Option<Bytes>,
}

/// Smaller bodies go as they are.
const GZIP_FROM: usize = 1024;

impl Rendered {
    pub fn new(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Self {
        let body = body.into();
        let hash = Sha256::digest(&body);
        Rendered {
            status,
            content_type,
            etag: format!("\"{}\"", hex::encode(&hash[..12])),
            gzip: (body.len() >= GZIP_FROM).then(|| gzip(&body)),
            body,
        }
    }

    /// The bytes this answer holds (what keeping it costs).
    pub fn weight(&self) -> usize {
        self.body.len() + self.gzip.as_ref().map_or(0, Bytes::len) + self.etag.len()
    }

    /// The body and ETag to send to a client whose `Accept-Encoding` is
    /// `accept`, and whether that body is gzipped.
    pub fn for_client(&self, accept: &str) -> (Bytes, String, bool) {
        let gzip_ok = accept.split(',').any(|e| {
            let mut parts = e.split(';');
            parts
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case("gzip"))
                && parts.all(|p| p.trim().replace(' ', "") != "q=0")
        });
        match &self.gzip {
            Some(gz) if gzip_ok => {
                let etag = format!("{}-gz\"", self.etag.trim_end_matches('"'));
                (gz.clone(), etag, true)
            }
            _ => (self.body.clone(), self.etag.clone(), false),
        }
    }

    /// This answer for the client that sent `headers`: gzipped when it
    /// accepts that, 304 when it holds this success already. A success
    /// carries `cache_control` and its ETag; anything else `no-store`.
    pub fn response(&self, headers: &HeaderMap, cache_control: &str) -> Response {
        let ok = self.status == StatusCode::OK;
        let header_text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let (body, etag, gzipped) =
            self.for_client(header_text(header::ACCEPT_ENCODING).unwrap_or(""));
        let mut response = if ok
            && header_text(header::IF_NONE_MATCH)
                .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
        {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (self.status, body).into_response()
        };
        let h = response.headers_mut();
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzipped {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        match (ok, HeaderValue::from_str(cache_control)) {
            (true, Ok(value)) => {
                h.insert(header::CACHE_CONTROL, value);
                if let Ok(etag) = HeaderValue::from_str(&etag) {
                    h.insert(header::ETAG, etag);
                }
            }
            _ => {
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            }
        }
        response
    }
}

fn gzip(body: &[u8]) -> Bytes {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(body)
        .and_then(|()| encoder.finish())
        .map(Bytes::from)
        .expect("gzip into memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_goes_to_clients_that_accept_it_with_its_own_etag() {
        let page = Rendered::new(StatusCode::OK, "text/html", "<p>x</p>".repeat(500));
        let (body, etag, gz) = page.for_client("br, gzip;q=0.8");
        assert!(gz && body.len() < 200 && etag.ends_with("-gz\""), "{etag}");
        let (body, etag, gz) = page.for_client("gzip;q=0, br");
        assert!(!gz && body.len() == 4000 && etag == page.etag);
        assert!(!page.for_client("").2);
        let small = Rendered::new(StatusCode::OK, "text/plain", "hi");
        assert!(!small.for_client("gzip").2);
    }

    #[test]
    fn a_client_holding_the_answer_gets_304_and_failures_are_not_stored() {
        let page = Rendered::new(StatusCode::OK, "text/html", "<p>x</p>".repeat(500));
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        let first = page.response(&headers, "private, no-cache");
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(first.headers()[header::CACHE_CONTROL], "private, no-cache");
        headers.insert(header::IF_NONE_MATCH, first.headers()[header::ETAG].clone());
        let again = page.response(&headers, "private, no-cache");
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let failed = Rendered::new(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "later");
        let failed = failed.response(&headers, "public, max-age=5");
        assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(failed.headers()[header::CACHE_CONTROL], "no-store");
    }
}
