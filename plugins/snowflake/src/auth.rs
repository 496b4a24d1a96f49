//! The bearer token of every request and the token type Snowflake must be
//! told (`X-Snowflake-Authorization-Token-Type`).
//!
//! A key-pair JWT is signed here, inside the sandbox, so the private key
//! never leaves the plugin's config. Its claims follow Snowflake's
//! key-pair authentication docs:
//!
//! - `iss`: `ACCOUNT.USER.SHA256:<base64 of the SHA-256 of the public key's DER>`
//! - `sub`: `ACCOUNT.USER`
//! - `iat`: now; `exp`: at most an hour later (Snowflake refuses more)
//!
//! with ACCOUNT and USER upper-cased and the account without any region
//! suffix (`xy12345.us-east-2.aws` is `XY12345`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use plugin_sdk::{ConnectorError, Timestamp};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::sha2::{Digest, Sha256};
use serde_json::json;

use crate::config::Auth;

/// How long a JWT is valid: Snowflake's docs use 59 minutes, just inside
/// the hour it accepts.
const JWT_LIFETIME_SECS: i64 = 59 * 60;

pub struct Credentials {
    pub token: String,
    pub token_type: &'static str,
}

impl Credentials {
    /// The credentials for statements issued at `now` (the host's clock).
    pub fn new(account: &str, auth: &Auth, now: Timestamp) -> Result<Self, ConnectorError> {
        Ok(match auth {
            Auth::KeyPair { user, private_key } => Credentials {
                token: key_pair_jwt(account, user, private_key, now)?,
                token_type: "KEYPAIR_JWT",
            },
            Auth::Oauth { token } => Credentials {
                token: token.clone(),
                token_type: "OAUTH",
            },
            Auth::ProgrammaticAccessToken { token } => Credentials {
                token: token.clone(),
                token_type: "PROGRAMMATIC_ACCESS_TOKEN",
            },
        })
    }
}

fn key_pair_jwt(
    account: &str,
    user: &str,
    pem: &str,
    now: Timestamp,
) -> Result<String, ConnectorError> {
    let key = private_key(pem)?;
    let public_der = key.to_public_key().to_public_key_der().map_err(|err| {
        ConnectorError::config(format_args!(
            "auth.private_key: cannot derive its public key: {err}"
        ))
    })?;
    let fingerprint = STANDARD.encode(Sha256::digest(public_der.as_bytes()));
    let subject = format!(
        "{}.{}",
        jwt_account(account),
        user.trim().to_ascii_uppercase()
    );
    let header = json!({"alg": "RS256", "typ": "JWT"});
    let claims = json!({
        "iss": format!("{subject}.SHA256:{fingerprint}"),
        "sub": subject,
        "iat": now.seconds,
        "exp": now.seconds + JWT_LIFETIME_SECS,
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key
        .pkcs1v15_sign::<Sha256>(signing_input.as_bytes())
        .map_err(|err| {
            ConnectorError::config(format_args!(
                "auth.private_key: cannot sign the JWT with it: {err}"
            ))
        })?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// The account as the JWT names it: upper case, without the region and
/// cloud of an account locator.
fn jwt_account(account: &str) -> String {
    let account = account.trim();
    account
        .split('.')
        .next()
        .unwrap_or(account)
        .to_ascii_uppercase()
}

/// Reads an unencrypted PKCS#8 PEM key. Secrets stored in environment
/// variables often carry `\n` escapes instead of line breaks: those are
/// undone first.
fn private_key(pem: &str) -> Result<rsa::PrivateKey, ConnectorError> {
    let pem = if pem.contains('\n') {
        pem.trim().to_string()
    } else {
        pem.trim().replace("\\n", "\n")
    };
    if pem.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return Err(ConnectorError::config(
            "auth.private_key is an encrypted PKCS#8 key; give the unencrypted key \
             (openssl pkcs8 -in key.p8 -out plain.p8 -nocrypt) and protect it as a secret",
        ));
    }
    if pem.contains("BEGIN RSA PRIVATE KEY") {
        return Err(ConnectorError::config(
            "auth.private_key is a PKCS#1 key (BEGIN RSA PRIVATE KEY); convert it to PKCS#8 \
             with: openssl pkcs8 -topk8 -nocrypt -in key.pem -out key.p8",
        ));
    }
    rsa::PrivateKey::from_pkcs8_pem(&pem).map_err(|err| {
        ConnectorError::config(format_args!(
            "auth.private_key is not an unencrypted PKCS#8 PEM RSA key (BEGIN PRIVATE KEY): {err}"
        ))
    })
}
