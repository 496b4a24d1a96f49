//! What Looker says of datagroups, dashboards, looks and content
//! validation (the API 4.0 schemas `Datagroup`, `Dashboard`,
//! `LookWithQuery`, `ContentValidation`), turned into observations.
//!
//! Only the fields used are declared; every one the spec marks nullable is
//! an `Option`, so an instance that leaves one out or sends `null` still
//! parses. Datagroup times are Unix seconds (integers), content times ISO
//! 8601 text: `Timestamp` reads both exactly.

use std::collections::BTreeSet;

use plugin_sdk::http::encode;
use plugin_sdk::prelude::*;
use serde::Deserialize;

use crate::session::{Session, detail};

/// The fields asked of a dashboard or look: what an observation reports,
/// nothing more (a full dashboard carries every tile and filter).
pub const CONTENT_FIELDS: &str = "title,updated_at,last_accessed_at,view_count,deleted,deleted_at";

/// The key of the instance-wide content validation asset.
pub const VALIDATION_ASSET: &str = "content_validation";

/// A dashboard or a look: they share their endpoints' shape.
#[derive(Debug, Clone, Copy)]
pub enum ContentKind {
    Dashboard,
    Look,
}

impl ContentKind {
    /// The asset kind and the prefix of its keys (`dashboard:42`).
    pub fn name(self) -> &'static str {
        match self {
            ContentKind::Dashboard => "dashboard",
            ContentKind::Look => "look",
        }
    }

    /// The collection in API paths and in the instance's web URLs.
    pub fn collection(self) -> &'static str {
        match self {
            ContentKind::Dashboard => "dashboards",
            ContentKind::Look => "looks",
        }
    }

    /// What a user lacks when Looker hides this kind of content.
    pub fn permission(self) -> &'static str {
        match self {
            ContentKind::Dashboard => "see_user_dashboards",
            ContentKind::Look => "see_looks",
        }
    }

    pub fn asset(self, id: &str) -> String {
        format!("{}:{id}", self.name())
    }

    fn link(self, web_url: &str, id: &str) -> String {
        format!("{web_url}/{}/{}", self.collection(), encode(id))
    }
}

/// `GET /datagroups`: one entry of the array.
#[derive(Deserialize)]
pub struct Datagroup {
    model_name: Option<String>,
    name: Option<String>,
    triggered_at: Option<Timestamp>,
    trigger_check_at: Option<Timestamp>,
    stale_before: Option<Timestamp>,
    trigger_value: Option<String>,
    trigger_error: Option<String>,
}

impl Datagroup {
    pub fn model(&self) -> &str {
        self.model_name.as_deref().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    pub fn asset(&self) -> String {
        format!("datagroup:{}::{}", self.model(), self.name())
    }

    /// Freshness is when the datagroup last triggered (its data changed); a
    /// trigger error is Looker's own verdict that the datagroup is broken.
    fn observation(&self) -> Observation {
        let mut observation =
            Observation::new(self.asset(), "datagroup").freshness(set(self.triggered_at));
        if let Some(at) = set(self.trigger_check_at) {
            observation = observation.metadata("trigger_check_at", at);
        }
        if let Some(at) = set(self.stale_before) {
            observation = observation.metadata("stale_before", at);
        }
        if let Some(value) = &self.trigger_value {
            observation = observation.metadata("trigger_value", value);
        }
        match &self.trigger_error {
            Some(error) if !error.is_empty() => observation
                .native_status(NativeStatus::error("trigger error").message(error))
                .error(AssetError::new("trigger_error", error).at(set(self.trigger_check_at))),
            // A datagroup with only `max_cache_age` is never checked: no verdict.
            _ if set(self.trigger_check_at).is_some() => {
                observation.native_status(NativeStatus::ok("trigger ok"))
            }
            _ => observation,
        }
    }
}

/// A time of 0 is no time at all (a datagroup never triggered or checked),
/// not 1970: reporting it would make the data look 56 years old.
fn set(at: Option<Timestamp>) -> Option<Timestamp> {
    at.filter(|at| *at > Timestamp::UNIX_EPOCH)
}

/// The observations of the datagroups asked for: `model::name` is one
/// datagroup, a bare `name` that datagroup in every model, `None` all of
/// them. One asked for but not there is an error on its asset.
pub fn datagroups(all: &[Datagroup], wanted: Option<&[String]>) -> Vec<Observation> {
    let Some(wanted) = wanted else {
        return all.iter().map(Datagroup::observation).collect();
    };
    let mut seen = BTreeSet::new();
    let mut observations = Vec::new();
    for selector in wanted {
        let (model, name) = match selector.split_once("::") {
            Some((model, name)) => (Some(model), name),
            None => (None, selector.as_str()),
        };
        let matches: Vec<&Datagroup> = all
            .iter()
            .filter(|d| d.name() == name && model.is_none_or(|m| m == d.model()))
            .collect();
        if matches.is_empty() {
            let message = format!(
                "Looker has no datagroup {selector:?} (or the API user cannot see its model)"
            );
            observations.push(
                Observation::new(format!("datagroup:{selector}"), "datagroup")
                    .native_status(NativeStatus::error("not found").message(&message))
                    .error(AssetError::new("not_found", message)),
            );
        }
        for datagroup in matches {
            if seen.insert(datagroup.asset()) {
                observations.push(datagroup.observation());
            }
        }
    }
    observations
}

/// `GET /dashboards/{id}` or `/looks/{id}` with [`CONTENT_FIELDS`].
#[derive(Deserialize)]
struct Content {
    title: Option<String>,
    updated_at: Option<Timestamp>,
    last_accessed_at: Option<Timestamp>,
    view_count: Option<u64>,
    deleted: Option<bool>,
    deleted_at: Option<Timestamp>,
}

/// A watched dashboard or look, waiting for content validation's verdict.
pub struct Watched {
    observation: Observation,
    /// Looker has it and it is not deleted: content validation speaks of it.
    live: bool,
    validation_errors: u64,
}

impl Watched {
    /// Read one dashboard or look. A missing (404) or deleted one is an
    /// error on its asset, not a failed run.
    pub async fn fetch(
        session: &mut Session,
        kind: ContentKind,
        id: &str,
        web_url: &str,
    ) -> Result<Watched, ConnectorError> {
        let path = format!("/{}/{}", kind.collection(), encode(id));
        let response = session
            .get(&path, &[("fields", CONTENT_FIELDS)], None)
            .await?;
        let observation = Observation::new(kind.asset(id), kind.name());
        if response.status() == 404 {
            let message = format!(
                "{} {id}: Looker answered {}; it was deleted for good, or the API user may not see it",
                kind.name(),
                detail(&response)
            );
            return Ok(Watched {
                observation: observation
                    .native_status(NativeStatus::error("not found").message(&message))
                    .error(AssetError::new("not_found", message)),
                live: false,
                validation_errors: 0,
            });
        }
        let content: Content = session.parse(&path, response)?;
        let deleted = content.deleted.unwrap_or(false);
        let mut observation = observation
            .freshness(content.updated_at)
            .metadata("deleted", deleted);
        if let Some(title) = &content.title {
            observation = observation.metadata("title", title);
        }
        if let Some(at) = content.last_accessed_at {
            observation = observation.metadata("last_accessed_at", at);
        }
        if let Some(views) = content.view_count {
            observation = observation.metadata("view_count", views);
        }
        if deleted {
            let when = content
                .deleted_at
                .map(|at| format!(" at {at}"))
                .unwrap_or_default();
            let message = format!(
                "{} {id}{} was deleted{when} (it is in the trash)",
                kind.name(),
                content.title.map(|t| format!(" {t:?}")).unwrap_or_default()
            );
            observation = observation
                .native_status(NativeStatus::error("deleted").message(&message))
                .error(
                    AssetError::new("deleted", message)
                        .log_link(kind.link(web_url, id))
                        .at(content.deleted_at),
                );
        }
        Ok(Watched {
            observation,
            live: !deleted,
            validation_errors: 0,
        })
    }

    /// The observation, with content validation's verdict when it ran.
    pub fn into_observation(self, validated: bool) -> Observation {
        if !validated || !self.live {
            return self.observation;
        }
        let n = self.validation_errors;
        let status = if n == 0 {
            NativeStatus::ok("valid")
        } else {
            NativeStatus::error("content errors")
                .message(format!("{n} content validation error(s)"))
        };
        self.observation.errored(n).native_status(status)
    }
}

/// `GET /content_validation`.
#[derive(Deserialize)]
pub struct ContentValidation {
    content_with_errors: Option<Vec<ContentWithErrors>>,
    computation_time: Option<f64>,
    total_looks_validated: Option<u64>,
    total_dashboard_elements_validated: Option<u64>,
    total_dashboard_filters_validated: Option<u64>,
    total_scheduled_plans_validated: Option<u64>,
    total_alerts_validated: Option<u64>,
    total_explores_validated: Option<u64>,
}

/// A `ContentValidatorError`: one piece of content (exactly one of the
/// content fields is set) and what is wrong with it.
#[derive(Deserialize)]
struct ContentWithErrors {
    look: Option<Item>,
    dashboard: Option<Item>,
    lookml_dashboard: Option<Item>,
    dashboard_element: Option<Item>,
    dashboard_filter: Option<Item>,
    scheduled_plan: Option<Item>,
    alert: Option<Item>,
    lookml_dashboard_element: Option<Item>,
    errors: Option<Vec<ValidationError>>,
}

/// The fields used of the `ContentValidation*` content schemas, which
/// share their names.
#[derive(Deserialize)]
struct Item {
    id: Option<String>,
    title: Option<String>,
    name: Option<String>,
    /// Relative, e.g. `/dashboards/42`.
    url: Option<String>,
    dashboard_id: Option<String>,
}

impl Item {
    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or("?")
    }

    /// ` "Title"`, or nothing.
    fn titled(&self) -> String {
        self.title
            .as_deref()
            .or(self.name.as_deref())
            .map(|t| format!(" {t:?}"))
            .unwrap_or_default()
    }
}

/// `ContentValidationError`.
#[derive(Deserialize)]
struct ValidationError {
    message: Option<String>,
    field_name: Option<String>,
    model_name: Option<String>,
    explore_name: Option<String>,
}

impl ValidationError {
    /// `Unknown field (model thelook, explore orders, field orders.total)`.
    fn describe(&self) -> String {
        let mut text = self
            .message
            .clone()
            .unwrap_or_else(|| "content validation error".into());
        let parts: Vec<String> = [
            ("model", &self.model_name),
            ("explore", &self.explore_name),
            ("field", &self.field_name),
        ]
        .into_iter()
        .filter_map(|(what, value)| value.as_ref().map(|v| format!("{what} {v}")))
        .collect();
        if !parts.is_empty() {
            text.push_str(&format!(" ({})", parts.join(", ")));
        }
        text
    }
}

/// Where an entry of `content_with_errors` belongs.
struct Place {
    /// The dashboard or look asset it is part of, when it is one.
    asset: Option<String>,
    /// The part of that content at fault (`tile "Revenue"`), if not all of it.
    part: Option<String>,
    /// The content in words, for errors no watched asset takes.
    what: String,
    link: Option<String>,
}

impl Place {
    fn error(&self, message: String) -> AssetError {
        let error = AssetError::new("content_validation", message);
        match &self.link {
            Some(link) => error.log_link(link),
            None => error,
        }
    }
}

impl ContentWithErrors {
    fn place(&self, web_url: &str) -> Place {
        let content = |kind: ContentKind, item: &Item, link: String| Place {
            asset: Some(kind.asset(item.id())),
            part: None,
            what: format!("{} {}{}", kind.name(), item.id(), item.titled()),
            link: Some(link),
        };
        let tile = |what: &str, item: &Item| {
            let part = format!("{what}{}", item.titled());
            match &item.dashboard_id {
                Some(dashboard) => Place {
                    asset: Some(ContentKind::Dashboard.asset(dashboard)),
                    what: format!("{part} of dashboard {dashboard}"),
                    part: Some(part),
                    link: Some(ContentKind::Dashboard.link(web_url, dashboard)),
                },
                None => Place {
                    asset: None,
                    what: part,
                    part: None,
                    link: None,
                },
            }
        };
        let other = |what: String| Place {
            asset: None,
            part: None,
            what,
            link: None,
        };
        if let Some(look) = &self.look {
            content(
                ContentKind::Look,
                look,
                ContentKind::Look.link(web_url, look.id()),
            )
        } else if let Some(dashboard) = &self.dashboard {
            let link = match &dashboard.url {
                Some(url) if url.starts_with('/') => format!("{web_url}{url}"),
                _ => ContentKind::Dashboard.link(web_url, dashboard.id()),
            };
            content(ContentKind::Dashboard, dashboard, link)
        } else if let Some(dashboard) = &self.lookml_dashboard {
            let link = ContentKind::Dashboard.link(web_url, dashboard.id());
            content(ContentKind::Dashboard, dashboard, link)
        } else if let Some(element) = &self.dashboard_element {
            tile("tile", element)
        } else if let Some(filter) = &self.dashboard_filter {
            tile("filter", filter)
        } else if let Some(plan) = &self.scheduled_plan {
            other(format!("schedule{}", plan.titled()))
        } else if let Some(alert) = &self.alert {
            other(format!("alert {}{}", alert.id(), alert.titled()))
        } else if let Some(element) = &self.lookml_dashboard_element {
            other(format!("LookML dashboard tile{}", element.titled()))
        } else {
            other("content".into())
        }
    }
}

impl ContentValidation {
    /// Attach each error to the watched dashboard or look it belongs to;
    /// errors of content nobody watches go to the instance-wide
    /// [`VALIDATION_ASSET`], which counts every piece of content with errors.
    pub fn attach(self, web_url: &str, watched: &mut [Watched]) -> Observation {
        let entries = self.content_with_errors.unwrap_or_default();
        let mut summary =
            Observation::new(VALIDATION_ASSET, "content_validation").errored(entries.len() as u64);
        for (name, total) in [
            ("looks_validated", self.total_looks_validated),
            (
                "dashboard_elements_validated",
                self.total_dashboard_elements_validated,
            ),
            (
                "dashboard_filters_validated",
                self.total_dashboard_filters_validated,
            ),
            (
                "scheduled_plans_validated",
                self.total_scheduled_plans_validated,
            ),
            ("alerts_validated", self.total_alerts_validated),
            ("explores_validated", self.total_explores_validated),
        ] {
            if let Some(total) = total {
                summary = summary.extra(name, total);
            }
        }
        if let Some(seconds) = self.computation_time {
            summary = summary.metadata("computation_time_s", seconds);
        }
        for entry in entries {
            let place = entry.place(web_url);
            let errors = entry.errors.unwrap_or_default();
            let owner = place.asset.as_ref().and_then(|asset| {
                watched
                    .iter_mut()
                    .find(|w| w.live && &w.observation.asset == asset)
            });
            match owner {
                Some(owner) => {
                    for error in errors {
                        let message = match &place.part {
                            Some(part) => format!("{part}: {}", error.describe()),
                            None => error.describe(),
                        };
                        owner.validation_errors += 1;
                        owner.observation.record_error(place.error(message));
                    }
                }
                None => {
                    for error in errors {
                        let message = format!("{}: {}", place.what, error.describe());
                        summary.record_error(place.error(message));
                    }
                }
            }
        }
        summary
    }
}
