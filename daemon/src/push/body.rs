//! Reading a push's body within its check's limit: a declared length over it
//! is refused before a byte is read, a body that grows past it is cut off,
//! and gzip is decompressed only up to the same limit, so a small bomb
//! cannot become a large allocation.
//!
//! A body refused before its end is not simply dropped: the server would
//! close the connection while the client still sends, and the client's
//! kernel, meeting the reset, may throw away the answer before the client
//! reads it. What is left of it is read and discarded for a bounded time and
//! amount ([`linger`]), as web servers' lingering close does, so the client
//! reads its 413 (or 401, 404...).

use std::io::Read;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use bytes::BytesMut;
use http_body_util::BodyExt;

use super::refusal::Refusal;

/// Longest a refused body is read on after the answer.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// Most bytes of a refused body read after the answer.
const LINGER_BYTES: u64 = 256 << 20;

/// The body of a request with `headers`, decompressed, at most `limit` bytes.
pub async fn read(mut body: Body, headers: &HeaderMap, limit: u64) -> Result<Bytes, Refusal> {
    let too_large = Refusal::TooLarge {
        limit,
        decompressed: false,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(refuse(body, too_large));
    }
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e == "identity" => false,
        Some(e) if e == "gzip" || e == "x-gzip" => true,
        Some(other) => {
            let why = format!("Content-Encoding {other:?} is not read; send gzip or no encoding");
            return Err(refuse(body, Refusal::Unsupported(why)));
        }
    };
    let mut raw = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Refusal::Invalid(vec![super::wire::FieldError::new(
                "",
                format!("the body could not be read: {e}"),
            )])
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if (raw.len() + data.len()) as u64 > limit {
            return Err(refuse(body, too_large));
        }
        raw.extend_from_slice(&data);
    }
    let raw = raw.freeze();
    if !gzip {
        return Ok(raw);
    }
    gunzip(&raw, limit)
}

/// `refusal`, for a request refused before its body was read: the body is
/// lingered on ([`linger`]).
pub fn refuse(body: Body, refusal: Refusal) -> Refusal {
    linger(body);
    refusal
}

/// Reads and discards what is left of `body` after its request is answered,
/// for at most [`LINGER_TIME`] and [`LINGER_BYTES`], so the connection is not
/// reset under a client still sending (see the module doc).
fn linger(mut body: Body) {
    tokio::spawn(async move {
        let mut read = 0u64;
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while read < LINGER_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        read += frame.data_ref().map_or(0, |d| d.len() as u64);
                    }
                    _ => break,
                }
            }
        })
        .await;
    });
}

/// Decompresses `raw`, refusing what would grow past `limit` bytes.
fn gunzip(raw: &[u8], limit: u64) -> Result<Bytes, Refusal> {
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(raw).take(limit.saturating_add(1));
    decoder.read_to_end(&mut out).map_err(|e| {
        Refusal::Invalid(vec![super::wire::FieldError::new(
            "",
            format!("the body is not valid gzip: {e}"),
        )])
    })?;
    if out.len() as u64 > limit {
        return Err(Refusal::TooLarge {
            limit,
            decompressed: true,
        });
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn a_gzip_bomb_is_refused_at_the_limit() {
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 128 << 10, "a bomb is small: {}", bomb.len());
        assert!(matches!(
            gunzip(&bomb, 1 << 20),
            Err(Refusal::TooLarge {
                decompressed: true,
                ..
            })
        ));
        assert_eq!(gunzip(&gzip(b"[\"a\"]"), 1 << 20).unwrap(), &b"[\"a\"]"[..]);
    }

    #[test]
    fn broken_gzip_is_invalid() {
        assert!(matches!(
            gunzip(b"not gzip", 1024),
            Err(Refusal::Invalid(_))
        ));
    }
}
