//! The in-process event bus: health events and completed runs, published after
//! their transaction commits, for subscriptions, webhooks and metrics.
//!
//! It owns the bounded buffers and what a slow consumer sees. The writer must
//! never wait for a reader, so each topic is a `tokio::sync::broadcast` ring:
//! publishing never blocks, and a consumer that falls more than the buffer
//! behind is told how many messages it missed ([`Received::Lagged`]) and goes
//! on from the oldest one still buffered. Health events carry their sequence
//! number, so a lagged consumer can read what it missed from the store.
//!
//! It must not touch storage or decide anything: it only carries what the
//! writer committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast;

use crate::store::HealthEvent;

/// A run whose writes committed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCompleted {
    pub run_id: String,
    pub check_id: String,
    pub connector: String,
    pub succeeded: bool,
    /// `config`, `auth`, `transient` or `system` when it failed.
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub started_at: SystemTime,
    pub duration: Duration,
    pub assets: u32,
}

/// What a subscriber gets next.
#[derive(Debug, Clone, PartialEq)]
pub enum Received<T> {
    Message(T),
    /// The subscriber fell behind and `n` messages were dropped for it; the
    /// next message is the oldest still buffered.
    Lagged(u64),
    /// The bus is gone (the daemon is stopping).
    Closed,
}

/// One receiving end of a topic.
#[derive(Debug)]
pub struct Subscription<T> {
    rx: broadcast::Receiver<Arc<T>>,
}

impl<T> Subscription<T> {
    /// Waits for the next message, or learns that it lagged.
    pub async fn recv(&mut self) -> Received<Arc<T>> {
        match self.rx.recv().await {
            Ok(m) => Received::Message(m),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }

    /// Skips every message already buffered, without waiting: for a
    /// consumer woken by the first of a burst that reads the rest from the
    /// store anyway (the alert dispatcher).
    pub fn skip_buffered(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    }
}

/// The bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    health: broadcast::Sender<Arc<HealthEvent>>,
    runs: broadcast::Sender<Arc<RunCompleted>>,
    /// Messages published so far, both topics: changes when stored data does,
    /// so readers can tell a cached answer is stale.
    published: Arc<AtomicU64>,
}

impl EventBus {
    /// A bus that buffers up to `capacity` messages per topic for the slowest
    /// subscriber.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            health: broadcast::channel(capacity).0,
            runs: broadcast::channel(capacity).0,
            published: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Publishes without waiting; returns how many subscribers were listening.
    pub fn publish_health(&self, event: HealthEvent) -> usize {
        self.published.fetch_add(1, Ordering::Release);
        self.health.send(Arc::new(event)).unwrap_or(0)
    }

    pub fn publish_run(&self, run: RunCompleted) -> usize {
        self.published.fetch_add(1, Ordering::Release);
        self.runs.send(Arc::new(run)).unwrap_or(0)
    }

    /// How many messages have been published, both topics.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    /// Health events published from now on.
    pub fn health_events(&self) -> Subscription<HealthEvent> {
        Subscription {
            rx: self.health.subscribe(),
        }
    }

    /// Runs completed from now on.
    pub fn runs(&self) -> Subscription<RunCompleted> {
        Subscription {
            rx: self.runs.subscribe(),
        }
    }

    /// Open subscriptions, both topics.
    pub fn subscribers(&self) -> usize {
        self.health.receiver_count() + self.runs.receiver_count()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{EntityRef, Status};

    fn event(seq: i64) -> HealthEvent {
        HealthEvent {
            seq,
            entity: EntityRef::Check("c".into()),
            from: None,
            to: Status::Healthy,
            reasons: vec![],
            muted: false,
            maintenance: None,
            suppressed_by: None,
            run_id: None,
            at: SystemTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_learns_it_lagged_without_blocking_the_publisher_or_others() {
        let bus = EventBus::new(4);
        let mut slow = bus.health_events();
        let mut fast = bus.health_events();
        for seq in 1..=10 {
            // Never blocks, however far behind `slow` is.
            assert_eq!(bus.publish_health(event(seq)), 2);
            match fast.recv().await {
                Received::Message(e) => assert_eq!(e.seq, seq),
                other => panic!("fast subscriber got {other:?}"),
            }
        }
        assert_eq!(slow.recv().await, Received::Lagged(6));
        let rest: Vec<i64> = [(); 4]
            .iter()
            .map(|_| match slow.rx.try_recv() {
                Ok(e) => e.seq,
                Err(e) => panic!("{e}"),
            })
            .collect();
        assert_eq!(rest, [7, 8, 9, 10], "it goes on from the oldest kept");
    }

    #[tokio::test]
    async fn publishing_with_no_subscriber_is_fine_and_closing_is_seen() {
        let bus = EventBus::new(8);
        assert_eq!(bus.publish_health(event(1)), 0);
        let mut sub = bus.runs();
        assert_eq!(bus.subscribers(), 1);
        drop(bus);
        assert_eq!(sub.recv().await, Received::Closed);
    }
}
