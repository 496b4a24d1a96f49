//! Who a public request may see: the tenants marked `public = true` in the
//! config in force, and the GraphQL API run in-process for one of them.
//!
//! It owns the one principal a public page queries as: a viewer scoped to a
//! single public tenant, so whatever a page or badge asks, the API answers
//! only what that tenant's viewer token would see. It must not run anything
//! but the fixed, read-only queries of this module's callers.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::api::{ApiSchema, Principal, State};
use crate::config::Role;
use crate::health::EntityRef;

/// Why a query for a public page gave no answer. Its text stays in the
/// daemon's logs: a public answer only says the page is unavailable.
#[derive(Debug, thiserror::Error)]
pub enum PublicError {
    #[error("the API answered with errors: {0}")]
    Api(String),
    #[error("the API's answer does not have the expected shape: {0}")]
    Shape(#[from] serde_json::Error),
}

/// The API as public pages reach it.
pub struct Public {
    pub state: Arc<State>,
    schema: ApiSchema,
}

impl Public {
    pub fn new(state: Arc<State>, schema: ApiSchema) -> Self {
        Public { state, schema }
    }

    /// The name of tenant `id` when it is public; `None` for a tenant that
    /// is not public and for one that does not exist alike.
    pub fn tenant(&self, id: &str) -> Option<String> {
        let loaded = self.state.service.loaded();
        (loaded.config.tenants.iter())
            .find(|t| t.public && t.id == id)
            .map(|t| t.name.clone())
    }

    /// The first public tenant (in config order) `entity` belongs to: a
    /// system in the flows of a public and a private tenant is public.
    pub fn owner(&self, entity: &EntityRef) -> Option<String> {
        let loaded = self.state.service.loaded();
        (loaded.config.tenants.iter())
            .filter(|t| t.public)
            .find(|t| self.state.within(entity, &t.id))
            .map(|t| t.id.clone())
    }

    /// The `data` of `query` run with `variables` as a viewer of `tenant`.
    pub async fn query<T: DeserializeOwned>(
        &self,
        tenant: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> Result<T, PublicError> {
        let principal = Principal {
            name: format!("public status page of {tenant}"),
            role: Role::Viewer,
            tenant: Some(tenant.to_owned()),
        };
        let request = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables));
        let response = crate::api::execute_as(&self.schema, &self.state, principal, request).await;
        if !response.errors.is_empty() {
            let messages: Vec<String> = response.errors.iter().map(|e| e.message.clone()).collect();
            return Err(PublicError::Api(messages.join("; ")));
        }
        let data = response.data.into_json()?;
        Ok(serde_json::from_value(data)?)
    }
}
