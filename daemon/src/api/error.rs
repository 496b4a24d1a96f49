//! The error codes every API error carries in `extensions.code`, so clients
//! branch on a code rather than on message text.

use async_graphql::ErrorExtensions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// No token, or one the config does not know.
    Unauthenticated,
    /// The token's role or tenant scope does not allow it.
    Forbidden,
    BadUserInput,
    NotFound,
    /// The database or the daemon cannot answer right now; try again.
    Unavailable,
    Internal,
    /// The answer would exceed `api.limits.max_answer`.
    AnswerTooLarge,
    /// A persisted query's hash is not stored: send the text with it.
    PersistedQueryNotFound,
    /// Persisted queries are off: send query texts.
    PersistedQueryNotSupported,
    /// A WebSocket already holds `api.websocket.max_subscriptions`
    /// operations: complete one (or open another connection) first.
    TooManySubscriptions,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthenticated => "UNAUTHENTICATED",
            Code::Forbidden => "FORBIDDEN",
            Code::BadUserInput => "BAD_USER_INPUT",
            Code::NotFound => "NOT_FOUND",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL",
            Code::AnswerTooLarge => "ANSWER_TOO_LARGE",
            Code::PersistedQueryNotFound => "PERSISTED_QUERY_NOT_FOUND",
            Code::PersistedQueryNotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            Code::TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
        }
    }
}

/// A GraphQL error with `extensions.code`.
pub fn error(code: Code, message: impl Into<String>) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code.as_str()))
}

/// A store failure as clients see it: the database is unreachable or busy
/// (`UNAVAILABLE`), or something this daemon did wrong (`INTERNAL`, logged,
/// without details that could leak data).
pub fn store_error(err: &crate::store::StoreError) -> async_graphql::Error {
    if err.is_unavailable() {
        error(
            Code::Unavailable,
            "the database is not reachable; try again",
        )
    } else {
        tracing::error!(error = %err, "API read failed");
        error(Code::Internal, "internal error reading the store")
    }
}

/// Gives every error a code: errors from parsing, validation (depth,
/// complexity, unknown fields) and input coercion come from async-graphql
/// without one, and are all the client's to fix.
pub struct ErrorCodes;

impl async_graphql::extensions::ExtensionFactory for ErrorCodes {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(ErrorCodes)
    }
}

fn with_codes(mut response: async_graphql::Response) -> async_graphql::Response {
    for e in &mut response.errors {
        let ext = e.extensions.get_or_insert_with(Default::default);
        if ext.get("code").is_none() {
            ext.set("code", Code::BadUserInput.as_str());
        }
    }
    response
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for ErrorCodes {
    async fn request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextRequest<'_>,
    ) -> async_graphql::Response {
        with_codes(next.run(ctx).await)
    }

    fn subscribe<'s>(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        stream: futures_util::stream::BoxStream<'s, async_graphql::Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures_util::stream::BoxStream<'s, async_graphql::Response> {
        use futures_util::StreamExt;
        next.run(ctx, stream).map(with_codes).boxed()
    }
}
