//! JSON decoding that is fast when the input is right and precise when it is
//! not.
//!
//! Tracking the path of every value (what `serde_path_to_error` does) made
//! parsing a 1 MB body about 15 times slower, so the path is only worked out
//! again, on a second pass, for input that failed.

use serde::de::DeserializeOwned;

/// Why JSON did not decode: the path of the offending value (`""` at the
/// top) and serde's reason.
pub(crate) struct JsonError {
    pub(crate) path: String,
    pub(crate) reason: serde_json::Error,
}

impl JsonError {
    /// ` at "path"`, or nothing for the top level: for use in messages.
    pub(crate) fn at(&self) -> String {
        if self.path.is_empty() || self.path == "." {
            String::new()
        } else {
            format!(" at \"{}\"", self.path)
        }
    }
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    serde_json::from_slice(bytes).map_err(|fast| {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        match serde_path_to_error::deserialize::<_, T>(de) {
            Err(err) => JsonError {
                path: err.path().to_string(),
                reason: err.into_inner(),
            },
            // Cannot happen (same input, same type), but the first error is true.
            Ok(_) => JsonError {
                path: String::new(),
                reason: fast,
            },
        }
    })
}
