//! Maintenance windows as clients see them: what `maintenanceWindows` lists
//! and what an entity's health says it is in.

use super::*;
use crate::health::{When, Window, format_duration};

/// Where a window was made.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum MaintenanceSource {
    /// `[[maintenance]]` in the config file: changed by editing it.
    Config,
    /// `createMaintenanceWindow`: ended by `endMaintenanceWindow`.
    Api,
}

/// A maintenance window: while it covers an entity, the entity's health
/// events are recorded marked with the window's name and send no alert.
pub struct WindowNode {
    pub window: Window,
    pub source: MaintenanceSource,
    pub now: SystemTime,
}

impl WindowNode {
    /// The span in force now, or else the next one.
    fn span(&self) -> Option<(SystemTime, SystemTime)> {
        self.window
            .current_span(self.now)
            .or_else(|| match &self.window.when {
                When::Once { start, end } => Some((*start, *end)),
                When::Recurring(r) => {
                    let next = self.window.next_boundary(self.now)?;
                    Some((next, next + r.duration))
                }
            })
    }

    fn recurring(&self) -> Option<&crate::health::Recurring> {
        match &self.window.when {
            When::Recurring(r) => Some(r),
            When::Once { .. } => None,
        }
    }
}

#[Object(name = "MaintenanceWindow")]
impl WindowNode {
    async fn name(&self) -> &str {
        &self.window.name
    }
    async fn reason(&self) -> &str {
        &self.window.reason
    }
    async fn source(&self) -> MaintenanceSource {
        self.source
    }
    /// In force now.
    async fn active(&self) -> bool {
        self.window.active_at(self.now)
    }
    /// The start of the span in force now, or of the next (a one-off's own
    /// start, even when it is over).
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.span().map(|(start, _)| time(start))
    }
    /// The end of that span.
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.span().map(|(_, end)| time(end))
    }
    /// A recurring window's cron pattern, in `timezone`.
    async fn cron(&self) -> Option<&str> {
        self.recurring().map(|r| r.expr.as_str())
    }
    /// A recurring window's length from each start, e.g. `2h`.
    async fn duration(&self) -> Option<String> {
        self.recurring().map(|r| format_duration(r.duration))
    }
    /// A recurring window's IANA time zone.
    async fn timezone(&self) -> Option<&str> {
        self.recurring().map(|r| r.zone.name())
    }
    /// The scope's globs; null for a level not named.
    async fn tenant(&self) -> Option<&str> {
        self.window.scope.tenant.as_deref()
    }
    async fn flow(&self) -> Option<&str> {
        self.window.scope.flow.as_deref()
    }
    async fn system(&self) -> Option<&str> {
        self.window.scope.system.as_deref()
    }
    async fn check(&self) -> Option<&str> {
        self.window.scope.check.as_deref()
    }
    async fn asset(&self) -> Option<&str> {
        self.window.scope.asset.as_deref()
    }
}

/// A window with where it was made.
pub fn window_node(state: &State, window: Window) -> WindowNode {
    let from_config = state
        .service
        .loaded()
        .config
        .maintenance
        .iter()
        .any(|w| w.name == window.name);
    WindowNode {
        window,
        source: if from_config {
            MaintenanceSource::Config
        } else {
            MaintenanceSource::Api
        },
        now: state.clock.now(),
    }
}
