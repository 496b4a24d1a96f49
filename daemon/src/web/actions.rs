//! The operator's forms: run now, re-sync, mute and unmute, delete data.
//! Each is one of the API's mutations run as the signed-in principal, so the
//! API checks the role (a forged form from a viewer is refused there) and
//! writes the audit log. Here: the CSRF and Origin checks, the form read
//! into the mutation's input, and its outcome shown on the page it came
//! from.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::gql::{self, Failure};
use super::{Shared, Signed, layout, session};

/// The answer to a POST without the session's CSRF token, or from another
/// site's page.
pub fn refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        layout::bare(
            "Refused",
            "This form is stale or was sent from another site: reload the page and try again.",
        ),
    )
        .into_response()
}

/// The most ids one re-sync form takes.
const MAX_IDS: usize = 1000;

/// How long a mute lasts, as the form offers it.
fn mute_for(choice: &str) -> Option<chrono::Duration> {
    match choice {
        "1h" => Some(chrono::Duration::hours(1)),
        "4h" => Some(chrono::Duration::hours(4)),
        "1d" => Some(chrono::Duration::days(1)),
        "7d" => Some(chrono::Duration::days(7)),
        _ => None,
    }
}

pub async fn act(
    State(web): State<Shared>,
    signed: Signed,
    headers: HeaderMap,
    Path(action): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if !session::same_origin(&headers) || !signed.session.csrf_matches(field("csrf")) {
        return refused();
    }
    let back = super::signin::local(Some(field("back"))).to_owned();
    let outcome = match action.as_str() {
        "run-now" => run_now(&web, &signed, field("check")).await,
        "resync" => resync(&web, &signed, field("asset"), field("ids")).await,
        "mute" => {
            mute(
                &web,
                &signed,
                field("entity"),
                field("reason"),
                field("for"),
            )
            .await
        }
        "unmute" => unmute(&web, &signed, field("entity")).await,
        "delete" => delete(&web, &signed, field("target"), field("confirm")).await,
        _ => Err(Failure::NotFound),
    };
    match outcome {
        Ok(message) => {
            signed.session.flash(message);
            Redirect::to(&back).into_response()
        }
        Err(failure) => failure.into_response(),
    }
}

/// The payload's user errors as one sentence, or `done`.
fn said(payload: &Value, done: String) -> String {
    let errors: Vec<&str> = (payload["userErrors"].as_array().into_iter().flatten())
        .filter_map(|e| e["message"].as_str())
        .collect();
    if errors.is_empty() {
        done
    } else {
        format!("Not done: {}", errors.join("; "))
    }
}

async fn run_now(web: &Shared, signed: &Signed, check: &str) -> Result<String, Failure> {
    let data = gql::run(
        web,
        signed,
        "mutation($id: ID!) { runCheck(input: { checkId: $id }) { queued check { key } userErrors { message } } }",
        json!({ "id": check }),
    )
    .await?;
    let p = &data["runCheck"];
    Ok(said(
        p,
        format!("Run of {} queued.", layout::s(&p["check"]["key"])),
    ))
}

async fn resync(web: &Shared, signed: &Signed, asset: &str, ids: &str) -> Result<String, Failure> {
    let ids: Vec<&str> = ids
        .split([',', '\n', '\r', ' ', '\t'])
        .filter(|i| !i.is_empty())
        .collect();
    if ids.len() > MAX_IDS {
        return Err(Failure::BadInput(format!(
            "ids: {} given; a re-sync takes at most {MAX_IDS} at once",
            ids.len()
        )));
    }
    let data = gql::run(
        web,
        signed,
        "mutation($id: ID!, $ids: [String!]) { resync(input: { assetId: $id, ids: $ids }) { affected message userErrors { message } } }",
        json!({ "id": asset, "ids": ids }),
    )
    .await?;
    let p = &data["resync"];
    let what = if ids.is_empty() {
        "all records".to_owned()
    } else {
        format!("{} ids", ids.len())
    };
    Ok(said(
        p,
        format!(
            "Re-sync of {what} asked; the connector reports {} affected.",
            layout::count(&p["affected"])
        ),
    ))
}

async fn mute(
    web: &Shared,
    signed: &Signed,
    entity: &str,
    reason: &str,
    length: &str,
) -> Result<String, Failure> {
    let length = mute_for(length).ok_or_else(|| {
        Failure::BadInput(format!("for: {length:?} is not one of 1h, 4h, 1d, 7d"))
    })?;
    let until = chrono::Utc::now() + length;
    let data = gql::run(
        web,
        signed,
        "mutation($id: ID!, $until: DateTime!, $reason: String!) { mute(input: { entityId: $id, until: $until, reason: $reason }) { muted userErrors { message } } }",
        json!({ "id": entity, "until": until.to_rfc3339(), "reason": reason }),
    )
    .await?;
    Ok(said(
        &data["mute"],
        format!("Muted until {}.", until.format("%Y-%m-%d %H:%M UTC")),
    ))
}

async fn unmute(web: &Shared, signed: &Signed, entity: &str) -> Result<String, Failure> {
    let data = gql::run(
        web,
        signed,
        "mutation($id: ID!) { unmute(input: { entityId: $id }) { muted userErrors { message } } }",
        json!({ "id": entity }),
    )
    .await?;
    Ok(said(&data["unmute"], "Unmuted.".to_owned()))
}

/// Deletes a tenant's or an asset's stored data once `confirm` is the key
/// the API gives the target (typed by hand, so a slip cannot delete).
async fn delete(
    web: &Shared,
    signed: &Signed,
    target: &str,
    confirm: &str,
) -> Result<String, Failure> {
    let found = gql::run(
        web,
        signed,
        "query($id: ID!) { node(id: $id) { __typename ... on Tenant { key } ... on Asset { key } } }",
        json!({ "id": target }),
    )
    .await?;
    let node = gql::found(&found["node"])?;
    let key = layout::s(&node["key"]);
    let input = match layout::s(&node["__typename"]) {
        "Tenant" => json!({ "tenantId": target }),
        "Asset" => json!({ "assetId": target }),
        _ => return Err(Failure::NotFound),
    };
    if confirm.trim() != key {
        return Err(Failure::BadInput(format!(
            "confirm: type {key:?} exactly to delete its data; nothing was deleted"
        )));
    }
    let data = gql::run(
        web,
        signed,
        "mutation($input: DeleteDataInput!) { deleteData(input: $input) { deleted { observations errors idSets missingIds } userErrors { message } } }",
        json!({ "input": input }),
    )
    .await?;
    let d = &data["deleteData"]["deleted"];
    Ok(said(
        &data["deleteData"],
        format!(
            "Deleted the stored data of {key}: {} observations, {} errors, {} id sets, {} missing ids.",
            layout::count(&d["observations"]),
            layout::count(&d["errors"]),
            layout::count(&d["idSets"]),
            layout::count(&d["missingIds"])
        ),
    ))
}
