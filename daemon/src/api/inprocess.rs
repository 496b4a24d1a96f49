//! The API executed in-process for the daemon's own web UI ([`crate::web`]):
//! a request runs through the same schema, loaders and resolvers as over
//! HTTP, for the holder of a token, so roles and tenant scope are exactly the
//! API's. The holder is named by the SHA-256 of their token (what the config
//! lists), so the caller never keeps the token itself, and a token a reload
//! removed answers nothing from then on.

use std::sync::Arc;

use futures_util::stream::BoxStream;

use super::view::{self, View};
use super::{
    ApiSchema, Code, Principal, State, cache, error_body, execute_as, keeps, request_data_for,
    schema,
};
use crate::config::ApiLimits;

/// An answer of [`InProcess::execute`].
#[derive(Debug)]
pub enum Answer {
    /// The API's kept answer, as JSON: the same `Bytes` (one allocation,
    /// [`Answer::is`]) for every request served it while nothing changed,
    /// so a caller can keep what it made of it until the answer is another.
    Kept(bytes::Bytes),
    /// An answer made for this request alone (a mutation, a failure).
    Own(serde_json::Value),
}

impl Answer {
    /// The answer as a client reads it (`data`, `errors`).
    pub fn into_json(self) -> serde_json::Value {
        match self {
            Answer::Kept(body) => serde_json::from_slice(&body).unwrap_or_default(),
            Answer::Own(value) => value,
        }
    }

    /// Whether this is the kept answer `body`: the very same bytes, not
    /// equal ones (a caller holding `body` keeps its allocation alive, so
    /// another answer cannot take its address).
    pub fn is(&self, body: &bytes::Bytes) -> bool {
        matches!(self, Answer::Kept(b) if b.as_ptr() == body.as_ptr() && b.len() == body.len())
    }
}

/// The schema with the daemon's state, for callers inside the daemon.
#[derive(Clone)]
pub struct InProcess {
    state: Arc<State>,
    schema: ApiSchema,
}

impl InProcess {
    pub fn new(state: Arc<State>, limits: ApiLimits) -> Self {
        InProcess {
            schema: schema(Some(state.clone()), limits),
            state,
        }
    }

    /// The principal `token` stands for in the config in force, and the hash
    /// that names it from now on.
    pub fn sign_in(&self, token: &str) -> Option<(Principal, String)> {
        let hash = view::hash(token);
        let principal = self.principal(&hash)?;
        Some((principal, hash))
    }

    /// The principal whose token hashes to `sha256`, while the config in
    /// force lists it.
    pub fn principal(&self, sha256: &str) -> Option<Principal> {
        self.view(sha256).map(|v| v.principal)
    }

    fn view(&self, sha256: &str) -> Option<View> {
        let index = self.state.index();
        let principal = view::by_hash(&index.config().api.tokens, sha256)?;
        Some(View { principal, index })
    }

    /// Runs `request` as the holder of the token hashing to `sha256`, and
    /// gives its answer as a client reads it (`data`, `errors`); `None` when
    /// the config no longer lists that token. Queries share the API's answer
    /// cache (by principal, text and variables, until the next event,
    /// mutation or reload), so a page many people have open is built once
    /// per change, as the same query over HTTP is.
    pub async fn execute(&self, sha256: &str, request: async_graphql::Request) -> Option<Answer> {
        let principal = self.principal(sha256)?;
        if !cache::read_only(&request.query) {
            let response = execute_as(&self.schema, &self.state, principal, request).await;
            return Some(Answer::Own(
                serde_json::to_value(&response).unwrap_or_default(),
            ));
        }
        let key = cache::Key {
            token: principal.name.clone(),
            query: request.query.clone(),
            operation: request.operation_name.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
        };
        let version = self.state.version();
        // This request's own answer, when it is not one to keep.
        let own = Arc::new(std::sync::Mutex::new(None));
        let build = {
            let (schema, state, own) = (self.schema.clone(), self.state.clone(), own.clone());
            move || async move {
                let response = execute_as(&schema, &state, principal, request).await;
                if keeps(&response) {
                    serde_json::to_vec(&response).ok().map(bytes::Bytes::from)
                } else {
                    *own.lock().unwrap_or_else(|e| e.into_inner()) =
                        serde_json::to_value(&response).ok();
                    None
                }
            }
        };
        let kept = (self.state.cache)
            .get_or_build_behind(key, version, build)
            .await;
        let own = own.lock().unwrap_or_else(|e| e.into_inner()).take();
        Some(match (kept, own) {
            (Some(body), _) => Answer::Kept(body),
            (None, Some(answer)) => Answer::Own(answer),
            // The request this one waited for failed inside the daemon.
            (None, None) => Answer::Own(error_body(
                Code::Unavailable,
                "the answer could not be built; try again",
            )),
        })
    }

    /// Runs the subscription `request` as [`InProcess::execute`] does.
    pub fn subscribe(
        &self,
        sha256: &str,
        mut request: async_graphql::Request,
    ) -> Option<BoxStream<'static, async_graphql::Response>> {
        let view = self.view(sha256)?;
        request.data = request_data_for(&self.state, Some(view));
        Some(Box::pin(self.schema.execute_stream(request)))
    }
}
