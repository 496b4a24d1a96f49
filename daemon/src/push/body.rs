//! Reading a push's body within its check's limit: a declared length over it
//! is refused before a byte is read, a body that grows past it is cut off,
//! and gzip is decompressed only up to the same limit, so a small bomb
//! cannot become a large allocation.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt;

use super::refusal::Refusal;

/// The body of a request with `headers`, decompressed, at most `limit` bytes.
pub async fn read(body: Body, headers: &HeaderMap, limit: u64) -> Result<Bytes, Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(Refusal::TooLarge {
            limit,
            decompressed: false,
        });
    }
    let gzip = match headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase())
    {
        None => false,
        Some(e) if e == "identity" => false,
        Some(e) if e == "gzip" || e == "x-gzip" => true,
        Some(other) => {
            return Err(Refusal::Unsupported(format!(
                "Content-Encoding {other:?} is not read; send gzip or no encoding"
            )));
        }
    };
    let max = usize::try_from(limit).unwrap_or(usize::MAX);
    let raw = http_body_util::Limited::new(body, max)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Refusal::TooLarge {
                    limit,
                    decompressed: false,
                }
            } else {
                Refusal::Invalid(vec![super::wire::FieldError::new(
                    "",
                    format!("the body could not be read: {e}"),
                )])
            }
        })?
        .to_bytes();
    if !gzip {
        return Ok(raw);
    }
    gunzip(&raw, limit)
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
