//! The limits on what one request may cost that the schema's depth and
//! complexity limits do not express: how many aliases a document may hold
//! (each alias of a field is another copy of its answer), how many errors an
//! answer lists, and how many bytes an answer may have.
//!
//! It owns counting and refusing; it must not run queries or know the fields:
//! what a field costs is declared on the field (`complexity`).

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};
use std::sync::Arc;

use super::error::Code;

/// Most errors an answer lists: a document of 10,000 bad directives would
/// otherwise answer with 10,000 errors. The rest are counted in one more.
pub const MAX_ERRORS: usize = 100;

/// Refuses documents with more than `max_aliases` aliased fields and keeps
/// the first [`MAX_ERRORS`] errors of an answer.
pub struct Limits {
    pub max_aliases: usize,
}

impl async_graphql::extensions::ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn async_graphql::extensions::Extension> {
        Arc::new(Limits {
            max_aliases: self.max_aliases,
        })
    }
}

/// The aliased fields of `set` and all it nests.
fn aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// The aliased fields of every operation and fragment of `doc`.
fn document_aliases(doc: &ExecutableDocument) -> usize {
    let operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| aliases(&op.node.selection_set.node))
        .sum();
    let fragments: usize = doc
        .fragments
        .values()
        .map(|f| aliases(&f.node.selection_set.node))
        .sum();
    operations + fragments
}

/// `errors` cut to the first [`MAX_ERRORS`], plus one saying how many more.
pub fn cap_errors(errors: &mut Vec<ServerError>) {
    if errors.len() <= MAX_ERRORS {
        return;
    }
    let more = errors.len() - MAX_ERRORS;
    errors.truncate(MAX_ERRORS);
    let mut last = ServerError::new(
        format!("{more} more errors not listed (the first {MAX_ERRORS} are)"),
        None,
    );
    last.extensions = Some(Default::default());
    if let Some(ext) = last.extensions.as_mut() {
        ext.set("code", Code::BadUserInput.as_str());
        ext.set("more", more);
    }
    errors.push(last);
}

#[async_trait::async_trait]
impl async_graphql::extensions::Extension for Limits {
    async fn parse_query(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: async_graphql::extensions::NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let n = document_aliases(&doc);
        if n > self.max_aliases {
            return Err(ServerError::new(
                format!(
                    "the query has {n} aliased fields; at most {} are allowed \
                     (api.limits.max_aliases)",
                    self.max_aliases
                ),
                None,
            ));
        }
        Ok(doc)
    }

    async fn request(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        next: async_graphql::extensions::NextRequest<'_>,
    ) -> async_graphql::Response {
        let mut response = next.run(ctx).await;
        cap_errors(&mut response.errors);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_counted_in_operations_fragments_and_inline_fragments() {
        let doc = async_graphql::parser::parse_query(
            "{ a: x b: x { c: y } ... on Q { d: x } ...F } fragment F on Q { e: x f }",
        )
        .unwrap();
        assert_eq!(document_aliases(&doc), 5);
    }

    #[test]
    fn errors_past_the_cap_are_counted_in_one() {
        let mut errors: Vec<_> = (0..250)
            .map(|i| ServerError::new(format!("e{i}"), None))
            .collect();
        cap_errors(&mut errors);
        assert_eq!(errors.len(), MAX_ERRORS + 1);
        assert_eq!(errors[MAX_ERRORS - 1].message, "e99");
        assert!(errors[MAX_ERRORS].message.starts_with("150 more errors"));
    }
}
