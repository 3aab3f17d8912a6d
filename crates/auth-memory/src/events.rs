//! [`MemorySecurityEvents`]: the [`SecurityEvents`] port in process memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use auth_core::{
    DateTime, EventCursor, SecurityEvent, SecurityEvents, SecurityEventsError, UserId, Utc,
};
use uuid::Uuid;

/// Listing order: user, then time and id (read backwards for newest first).
type Key = (UserId, DateTime<Utc>, Uuid);

/// Each account's security history in process memory: lost on restart, one instance only.
/// Clones share the same events. No operation fails.
#[derive(Clone, Default)]
pub struct MemorySecurityEvents {
    events: Arc<Mutex<BTreeMap<Key, SecurityEvent>>>,
}

impl MemorySecurityEvents {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events are held (of every account).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no event is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, SecurityEvent>> {
        // Every update is a single insert or removal: a panic elsewhere leaves a valid map.
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemorySecurityEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySecurityEvents")
            .field("events", &self.len())
            .finish()
    }
}

#[async_trait::async_trait]
impl SecurityEvents for MemorySecurityEvents {
    async fn record(&self, event: &SecurityEvent) -> Result<(), SecurityEventsError> {
        self.lock()
            .insert((event.user_id, event.at, event.id), event.clone());
        Ok(())
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<SecurityEvent>, SecurityEventsError> {
        let events = self.lock();
        let upper = match after {
            Some(c) => std::ops::Bound::Excluded((user, c.at, c.id)),
            None => std::ops::Bound::Included((user, DateTime::<Utc>::MAX_UTC, Uuid::max())),
        };
        let lower = std::ops::Bound::Included((user, DateTime::<Utc>::MIN_UTC, Uuid::nil()));
        Ok(events
            .range((lower, upper))
            .rev()
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, SecurityEventsError> {
        let mut events = self.lock();
        let old = events.len();
        events.retain(|_, e| e.at >= before);
        Ok(u64::try_from(old - events.len()).unwrap_or(u64::MAX))
    }
}
