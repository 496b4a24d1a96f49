//! Builders for what a connector returns: [`Report`], [`Observation`],
//! [`AssetError`], [`NativeStatus`], [`Descriptor`], [`AssetDescriptor`],
//! [`ActionOutcome`].
//!
//! The types are the contract's own records (their fields are public); the
//! builders only make the common cases short and keep the invariants the
//! daemon relies on: an observation's error list is a bounded sample
//! ([`MAX_ERROR_SAMPLE`]) while its totals by kind count every error.
//!
//! ```ignore
//! let obs = Observation::new("ANALYTICS.PUBLIC.ORDERS", "table")
//!     .expected(10)
//!     .received(9)
//!     .errored(1)
//!     .extra("bytes", 123)
//!     .freshness(Timestamp::parse_rfc3339("2026-11-20T10:00:00Z")?)
//!     .last_received("order-9", Timestamp::from_unix(1_795_000_000))
//!     .native_status(NativeStatus::warn("warn").message("2 rows late"))
//!     .error(AssetError::new("parse", "bad date").document_id("order-5"))
//!     .metadata("warehouse", "ANALYTICS");
//! let report = Report::builder().observation(obs).build();
//! ```

use std::fmt::Display;

use crate::{
    ActionOutcome, AssetDescriptor, AssetError, Capabilities, Counts, Descriptor, ErrorTotal,
    LastReceived, MetadataEntry, NamedCount, NativeStatus, Observation, Report, StatusLevel,
    Timestamp,
};

/// The most errors an [`Observation`] keeps as a sample; further errors only
/// count in its totals by kind.
pub const MAX_ERROR_SAMPLE: usize = 100;

impl Report {
    /// Start an empty report.
    pub fn builder() -> ReportBuilder {
        ReportBuilder::default()
    }
}

/// Collects observations into a [`Report`]. See [`Report::builder`].
#[derive(Debug, Default, Clone)]
pub struct ReportBuilder {
    observations: Vec<Observation>,
}

impl ReportBuilder {
    /// Add one observation.
    pub fn observation(mut self, observation: Observation) -> Self {
        self.observations.push(observation);
        self
    }

    /// Add many observations.
    pub fn observations(mut self, observations: impl IntoIterator<Item = Observation>) -> Self {
        self.observations.extend(observations);
        self
    }

    /// Add one observation through `&mut` (handy in loops).
    pub fn push(&mut self, observation: Observation) {
        self.observations.push(observation);
    }

    /// How many observations so far.
    pub fn len(&self) -> usize {
        self.observations.len()
    }

    /// Whether there is no observation yet.
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }

    /// The finished report.
    pub fn build(self) -> Report {
        Report {
            observations: self.observations,
        }
    }
}

impl From<Observation> for Report {
    fn from(observation: Observation) -> Self {
        Report {
            observations: vec![observation],
        }
    }
}

impl From<Vec<Observation>> for Report {
    fn from(observations: Vec<Observation>) -> Self {
        Report { observations }
    }
}

impl Observation {
    /// What a run says of one asset. `asset` is the asset's stable key in the
    /// check (e.g. `ANALYTICS.PUBLIC.ORDERS`), `kind` what it is (`table`,
    /// `model`, `source`, `datagroup`, `dashboard`, `documents`...).
    pub fn new(asset: impl Into<String>, kind: impl Into<String>) -> Self {
        Observation {
            asset: asset.into(),
            kind: kind.into(),
            counts: Counts {
                expected: None,
                received: None,
                errored: None,
                extras: Vec::new(),
            },
            freshness: None,
            last_received: None,
            native_status: None,
            errors: Vec::new(),
            error_totals: Vec::new(),
            metadata: Vec::new(),
        }
    }

    /// How many records should be there, when the system knows.
    pub fn expected(mut self, count: u64) -> Self {
        self.counts.expected = Some(count);
        self
    }

    /// How many records are there.
    pub fn received(mut self, count: u64) -> Self {
        self.counts.received = Some(count);
        self
    }

    /// How many records failed.
    pub fn errored(mut self, count: u64) -> Self {
        self.counts.errored = Some(count);
        self
    }

    /// A count with a name of your choosing (`bytes`, `rows_affected`...).
    /// Setting a name twice keeps the last value.
    pub fn extra(mut self, name: impl Into<String>, value: u64) -> Self {
        let name = name.into();
        match self.counts.extras.iter_mut().find(|e| e.name == name) {
            Some(existing) => existing.value = value,
            None => self.counts.extras.push(NamedCount { name, value }),
        }
        self
    }

    /// When the asset's data was last loaded or updated (UTC). Accepts a
    /// [`Timestamp`] or an `Option<Timestamp>`.
    pub fn freshness(mut self, at: impl Into<Option<Timestamp>>) -> Self {
        self.freshness = at.into();
        self
    }

    /// The most recent record the system received, and when (a
    /// [`Timestamp`], an `Option<Timestamp>` or `None`).
    pub fn last_received(
        mut self,
        id: impl Into<String>,
        at: impl Into<Option<Timestamp>>,
    ) -> Self {
        self.last_received = Some(LastReceived {
            id: id.into(),
            at: at.into(),
        });
        self
    }

    /// The vendor's own verdict (dbt `pass`/`warn`/`error`, a Looker trigger
    /// error...).
    pub fn native_status(mut self, status: NativeStatus) -> Self {
        self.native_status = Some(status);
        self
    }

    /// Record one error: it counts in the totals for its kind and joins the
    /// sample while the sample holds fewer than [`MAX_ERROR_SAMPLE`].
    pub fn error(mut self, error: AssetError) -> Self {
        self.record_error(error);
        self
    }

    /// Record many errors, as [`error`](Self::error).
    pub fn errors(mut self, errors: impl IntoIterator<Item = AssetError>) -> Self {
        for error in errors {
            self.record_error(error);
        }
        self
    }

    /// Add `count` to the total for `kind` without a sample, for errors the
    /// system only counts.
    pub fn error_total(mut self, kind: impl Into<String>, count: u64) -> Self {
        self.add_error_total(kind.into(), count);
        self
    }

    /// A free-form key and value shown with the asset (tenant, warehouse,
    /// dbt invocation id...). Setting a key twice keeps the last value.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Display) -> Self {
        self.set_metadata(key, value);
        self
    }

    /// [`error`](Self::error) through `&mut`, for loops.
    pub fn record_error(&mut self, error: AssetError) {
        self.add_error_total(error.kind.clone(), 1);
        if self.errors.len() < MAX_ERROR_SAMPLE {
            self.errors.push(error);
        }
    }

    /// [`metadata`](Self::metadata) through `&mut`, for loops.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Display) {
        let key = key.into();
        let value = value.to_string();
        match self.metadata.iter_mut().find(|m| m.key == key) {
            Some(existing) => existing.value = value,
            None => self.metadata.push(MetadataEntry { key, value }),
        }
    }

    fn add_error_total(&mut self, kind: String, count: u64) {
        match self.error_totals.iter_mut().find(|t| t.kind == kind) {
            Some(total) => total.count = total.count.saturating_add(count),
            None => self.error_totals.push(ErrorTotal { kind, count }),
        }
    }
}

impl AssetError {
    /// One error seen on an asset: a `kind` of your choosing (`parse`,
    /// `timeout`, `test_failure`...) and a human message.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        AssetError {
            kind: kind.into(),
            message: message.into(),
            document_id: None,
            log_link: None,
            at: None,
        }
    }

    /// The record the error is about.
    pub fn document_id(mut self, id: impl Into<String>) -> Self {
        self.document_id = Some(id.into());
        self
    }

    /// A link to the vendor's log or UI for this error.
    pub fn log_link(mut self, url: impl Into<String>) -> Self {
        self.log_link = Some(url.into());
        self
    }

    /// When it happened (a [`Timestamp`] or an `Option<Timestamp>`).
    pub fn at(mut self, at: impl Into<Option<Timestamp>>) -> Self {
        self.at = at.into();
        self
    }
}

impl NativeStatus {
    /// A vendor verdict: the level the health engine understands and the
    /// vendor's own word for it.
    pub fn new(level: StatusLevel, label: impl Into<String>) -> Self {
        NativeStatus {
            level,
            label: label.into(),
            message: None,
        }
    }

    /// The vendor says all is well (`pass`, `success`).
    pub fn ok(label: impl Into<String>) -> Self {
        Self::new(StatusLevel::Ok, label)
    }

    /// The vendor warns (`warn`).
    pub fn warn(label: impl Into<String>) -> Self {
        Self::new(StatusLevel::Warn, label)
    }

    /// The vendor reports a failure (`fail`, `error`, `trigger error`).
    pub fn error(label: impl Into<String>) -> Self {
        Self::new(StatusLevel::Error, label)
    }

    /// The vendor gave no verdict (`skipped`, not run).
    pub fn unknown(label: impl Into<String>) -> Self {
        Self::new(StatusLevel::Unknown, label)
    }

    /// The vendor's explanation.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

impl Descriptor {
    /// Describe a connector. Pass `env!("CARGO_PKG_VERSION")` as the version.
    /// The config schema defaults to any JSON object; set yours with
    /// [`config_schema`](Self::config_schema).
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Descriptor {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            config_schema:
                r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object"}"#
                    .to_string(),
            capabilities: Capabilities::empty(),
            suggested_hosts: Vec::new(),
        }
    }

    /// The JSON Schema (draft 2020-12) of the config; flag secret fields with
    /// `"x-secret": true` so the daemon redacts them.
    pub fn config_schema(mut self, schema: serde_json::Value) -> Self {
        self.config_schema = schema.to_string();
        self
    }

    /// Optional actions implemented: `Capabilities::RESYNC`,
    /// `Capabilities::DELETE` (combine with `|`).
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// A host the check will probably need to grant, e.g.
    /// `https://*.snowflakecomputing.com`.
    pub fn suggested_host(mut self, host: impl Into<String>) -> Self {
        self.suggested_hosts.push(host.into());
        self
    }
}

impl AssetDescriptor {
    /// An asset a check can watch.
    pub fn new(asset: impl Into<String>, kind: impl Into<String>) -> Self {
        AssetDescriptor {
            asset: asset.into(),
            kind: kind.into(),
            description: None,
        }
    }

    /// A human description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }
}

impl ActionOutcome {
    /// An outcome that says nothing yet.
    pub fn new() -> Self {
        ActionOutcome {
            affected: None,
            message: None,
        }
    }

    /// How many records the action affected.
    pub fn affected(mut self, count: u64) -> Self {
        self.affected = Some(count);
        self
    }

    /// What happened, in words.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

impl Default for ActionOutcome {
    fn default() -> Self {
        Self::new()
    }
}
