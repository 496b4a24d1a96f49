//! The subscription root: health changes (resumable by sequence number) and
//! completed runs, from the event bus, in the subscriber's tenant scope.
//! Stored events (a resume, or a subscriber that fell behind the bus) are read
//! through the shared [`super::replay`], one turn at a time.

use std::collections::VecDeque;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures_util::Stream;

use super::error::{Code, error, store_error};
use super::ids::{self, Target};
use super::types::{
    ErrorClass, EventFilter, HealthEventFilter, HealthEventNode, Long, Result, time,
};
use super::view::View;
use super::{State, state, view};
use crate::events::{Received, RunCompleted, Subscription as BusSubscription};
use crate::health::{EntityRef, FailureClass};
use crate::metrics::SubscriptionGuard;
use crate::store::HealthEvent;

pub struct SubscriptionRoot;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RunResult {
    Succeeded,
    Failed,
}

/// A run that has just been stored.
#[derive(SimpleObject)]
pub struct RunCompletedEvent {
    pub run_id: ID,
    pub check_id: ID,
    pub check_key: String,
    pub connector: String,
    pub outcome: RunResult,
    pub error_class: Option<ErrorClass>,
    pub error_message: Option<String>,
    pub started_at: DateTime<Utc>,
    pub duration_ms: f64,
    pub assets: i32,
}

impl From<&RunCompleted> for RunCompletedEvent {
    fn from(r: &RunCompleted) -> Self {
        RunCompletedEvent {
            run_id: ids::encode(&Target::Run(r.run_id.clone())),
            check_id: ids::entity_id(&EntityRef::Check(r.check_id.clone())),
            check_key: r.check_id.clone(),
            connector: r.connector.clone(),
            outcome: if r.succeeded {
                RunResult::Succeeded
            } else {
                RunResult::Failed
            },
            error_class: r
                .error_class
                .as_deref()
                .and_then(FailureClass::parse)
                .map(Into::into),
            error_message: r.error_message.clone(),
            started_at: time(r.started_at),
            duration_ms: r.duration.as_secs_f64() * 1000.0,
            assets: i32::try_from(r.assets).unwrap_or(i32::MAX),
        }
    }
}

/// Where a health subscription is: replaying from the store, or live.
struct Feed {
    state: Arc<State>,
    view: View,
    filter: EventFilter,
    bus: BusSubscription<HealthEvent>,
    /// The highest sequence number handled; live events at or below it were
    /// replayed already.
    last: i64,
    /// Replaying stored events until the replay has caught up with the store.
    replaying: bool,
    ready: VecDeque<Arc<HealthEvent>>,
    /// Counts the subscription as open while the stream lives.
    _open: SubscriptionGuard,
}

impl Feed {
    async fn next(&mut self) -> Option<Result<Arc<HealthEvent>>> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(Ok(e));
            }
            if self.replaying {
                // One turn among the subscribers replaying, reading through
                // the shared pages; its events are sent after the turn ends.
                let turn = (self.state.replay)
                    .turn(&self.view, &self.filter, self.last)
                    .await;
                match turn {
                    Ok(read) => {
                        self.replaying = !read.caught_up;
                        self.last = read.last;
                        self.ready.extend(read.events);
                    }
                    Err(e) => return Some(Err(e)),
                }
                continue;
            }
            match self.bus.recv().await {
                Received::Message(e) => {
                    if e.seq <= self.last {
                        continue;
                    }
                    if e.seq > self.last + 1 {
                        // Published out of reach (this subscriber was slow or
                        // the event was committed before it subscribed): read
                        // the gap from the store, which has every event.
                        self.replaying = true;
                        continue;
                    }
                    self.last = e.seq;
                    if self.filter.matches(&self.view, &e) {
                        return Some(Ok(e));
                    }
                }
                Received::Lagged(_) => self.replaying = true,
                Received::Closed => return None,
            }
        }
    }
}

#[Subscription]
impl SubscriptionRoot {
    /// Each change of health, as it is committed. With `afterSeq`, first every
    /// stored change after that sequence number, then live, with no gap and
    /// no duplicate; without it, live from now.
    async fn health_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<HealthEventFilter>,
        after_seq: Option<Long>,
    ) -> Result<impl Stream<Item = Result<HealthEventNode>> + use<>> {
        let view = view(ctx)?.clone();
        let state = state(ctx).clone();
        let filter = EventFilter::new(&view, filter)?;
        // Listen before reading the store, so nothing committed in between is
        // missed; what is both read and heard is dropped by sequence number.
        let bus = state.bus.health_events();
        let (last, replaying) = match after_seq {
            Some(Long(seq)) if seq < 0 => {
                return Err(error(Code::BadUserInput, "afterSeq must be 0 or more"));
            }
            Some(Long(seq)) => (seq, true),
            None => (
                state
                    .store
                    .last_event_seq()
                    .await
                    .map_err(|e| store_error(&e))?,
                false,
            ),
        };
        let feed = Feed {
            _open: state.service.metrics().subscription(),
            state,
            view,
            filter,
            bus,
            last,
            replaying,
            ready: VecDeque::new(),
        };
        Ok(futures_util::stream::unfold(feed, |mut feed| async move {
            let item = feed.next().await?;
            Some((item.map(HealthEventNode), feed))
        }))
    }

    /// Each run as it is stored; only of one check when `checkId` is given.
    async fn run_completed(
        &self,
        ctx: &Context<'_>,
        check_id: Option<ID>,
    ) -> Result<impl Stream<Item = RunCompletedEvent> + use<>> {
        let view = view(ctx)?.clone();
        let check = match check_id {
            Some(id) => match ids::decode(&id) {
                Some(Target::Entity(EntityRef::Check(c)))
                    if view.sees(&EntityRef::Check(c.clone())) =>
                {
                    Some(c)
                }
                _ => return Err(error(Code::NotFound, format!("no check {}", id.as_str()))),
            },
            None => None,
        };
        let runs = state(ctx).bus.runs();
        let open = state(ctx).service.metrics().subscription();
        Ok(futures_util::stream::unfold(
            (runs, view, check, open),
            |(mut runs, view, check, open)| async move {
                loop {
                    match runs.recv().await {
                        Received::Message(r) => {
                            let wanted = check.as_ref().is_none_or(|c| *c == r.check_id)
                                && view.sees(&EntityRef::Check(r.check_id.clone()));
                            if wanted {
                                return Some((
                                    RunCompletedEvent::from(&*r),
                                    (runs, view, check, open),
                                ));
                            }
                        }
                        // Runs are not replayable; a slow subscriber skips.
                        Received::Lagged(_) => continue,
                        Received::Closed => return None,
                    }
                }
            },
        ))
    }
}
