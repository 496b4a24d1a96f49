//! Counts the SQL statements this process issues, as sqlx reports them (one
//! `sqlx::query` event each), so nothing in the daemon is instrumented for
//! the tests that count. The count is process-wide: a test binary that
//! counts holds only tests whose counts may meet.

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::{Layer, Registry};

static STATEMENTS: AtomicUsize = AtomicUsize::new(0);
static INSTALL: Once = Once::new();

struct CountStatements;

impl<S: tracing::Subscriber> Layer<S> for CountStatements {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" {
            STATEMENTS.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Starts counting (once per process: it installs the global subscriber).
pub fn count() {
    INSTALL.call_once(|| {
        let subscriber = Registry::default().with(
            CountStatements.with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("sqlx::query", tracing::Level::TRACE),
            ),
        );
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

/// The statements issued since counting started.
pub fn issued() -> usize {
    STATEMENTS.load(Ordering::SeqCst)
}
