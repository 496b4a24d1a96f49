//! Opaque global ids (Relay): what a client passes back to `node(id:)` and to
//! mutations. They wrap the store's entity keys, so one id names the same
//! thing in queries, events and the audit log.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::health::EntityRef;
use crate::store::{entity_key, parse_entity_key};

/// What a global id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Entity(EntityRef),
    Run(String),
}

pub fn encode(target: &Target) -> async_graphql::ID {
    let raw = match target {
        Target::Entity(e) => entity_key(e),
        Target::Run(id) => format!("run:{id}"),
    };
    async_graphql::ID(URL_SAFE_NO_PAD.encode(raw))
}

pub fn entity_id(entity: &EntityRef) -> async_graphql::ID {
    encode(&Target::Entity(entity.clone()))
}

/// `None` for anything this API never issued.
pub fn decode(id: &str) -> Option<Target> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(id).ok()?).ok()?;
    if let Some(run) = raw.strip_prefix("run:") {
        return Some(Target::Run(run.to_owned()));
    }
    parse_entity_key(&raw).map(Target::Entity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ids_are_refused() {
        let asset = Target::Entity(EntityRef::Asset {
            check: "orders".into(),
            asset: "DB.SCHEMA:ORDERS/1".into(),
        });
        for t in [
            asset,
            Target::Entity(EntityRef::Tenant("acme".into())),
            Target::Run("0193-1".into()),
        ] {
            assert_eq!(decode(&encode(&t)), Some(t));
        }
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("user:1")), None);
    }
}
