//! One GraphQL request of a page or an action, run in-process for the
//! signed-in principal, and what its errors mean to a browser: an entity the
//! API hides is a 404 (as for one that does not exist), a refusal by role a
//! 403, a token gone since sign-in a new sign-in.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::{Shared, Signed, layout};
use crate::api::Answer;

/// Why a page could not be answered.
#[derive(Debug)]
pub enum Failure {
    /// Nothing by that name in the principal's scope.
    NotFound,
    /// The request is wrong (a bad search, a bad form); what and where.
    BadInput(String),
    /// The API refused the principal (its role).
    Forbidden(String),
    /// The token was removed since sign-in.
    SignedOut,
    /// The API failed.
    Api(String),
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            Failure::SignedOut => return Redirect::to("/sign-in").into_response(),
            Failure::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found: nothing by that name is visible to you.".to_owned(),
            ),
            Failure::BadInput(m) => (StatusCode::BAD_REQUEST, m),
            Failure::Forbidden(m) => (StatusCode::FORBIDDEN, m),
            Failure::Api(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
        };
        (status, layout::bare(status.as_str(), &message)).into_response()
    }
}

/// Runs `query` with `variables` as `signed`; its `data`, or why not. An
/// error coded `NOT_FOUND` (or a null answer the caller reads as such) is a
/// 404, `FORBIDDEN` a 403, `BAD_USER_INPUT` a 400.
pub async fn run(
    web: &Shared,
    signed: &Signed,
    query: &str,
    variables: Value,
) -> Result<Value, Failure> {
    data(ask(web, signed, query, variables).await?.into_json())
}

/// Runs `query` with `variables` as `signed`: the API's answer as it is
/// (kept or not), or a new sign-in when the token is gone.
pub async fn ask(
    web: &Shared,
    signed: &Signed,
    query: &str,
    variables: Value,
) -> Result<Answer, Failure> {
    let request = async_graphql::Request::new(query)
        .variables(async_graphql::Variables::from_json(variables));
    web.api
        .execute(&signed.session.token_sha256, request)
        .await
        .ok_or(Failure::SignedOut)
}

/// The `data` of an `answer`, or what its first error means (see [`run`]).
pub fn data(mut answer: Value) -> Result<Value, Failure> {
    if let Some(e) = answer["errors"].get(0) {
        let message = e["message"].as_str().unwrap_or_default().to_owned();
        return Err(match e["extensions"]["code"].as_str().unwrap_or_default() {
            "NOT_FOUND" => Failure::NotFound,
            "FORBIDDEN" => Failure::Forbidden(message),
            "BAD_USER_INPUT" => Failure::BadInput(message),
            "UNAUTHENTICATED" => Failure::SignedOut,
            _ => Failure::Api(message),
        });
    }
    Ok(answer["data"].take())
}

/// `value`, or a 404 when the API answered null (it hides what is outside
/// the principal's tenant the same way as what does not exist).
pub fn found(value: &Value) -> Result<&Value, Failure> {
    if value.is_null() {
        Err(Failure::NotFound)
    } else {
        Ok(value)
    }
}

/// The `node` of `data`, when it is of the type the query's fragment asks
/// (a node of another type answers `{}`); a 404 otherwise.
pub fn node(data: &Value) -> Result<&Value, Failure> {
    let node = found(&data["node"])?;
    if node["id"].is_null() {
        return Err(Failure::NotFound);
    }
    Ok(node)
}
