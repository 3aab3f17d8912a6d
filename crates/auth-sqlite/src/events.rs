//! [`SqliteSecurityEvents`]: the [`SecurityEvents`] port on SQLite.

use std::fmt;

use auth_core::{
    DateTime, EventCursor, SecurityEvent, SecurityEventKind, SecurityEvents, SecurityEventsError,
    TruncatedIp, UserId, Utc,
};
use diesel::prelude::*;
use uuid::Uuid;

use crate::database::Database;
use crate::errors::Failure;
use crate::schema::security_events;

/// [`SecurityEvents`] on the `security_events` table of a
/// [`SqliteUserRepository`](crate::SqliteUserRepository)'s database, made by
/// [`SqliteUserRepository::security_events`](crate::SqliteUserRepository::security_events).
/// Rows are not tied to the `users` row.
#[derive(Clone)]
pub struct SqliteSecurityEvents {
    db: Database,
}

impl SqliteSecurityEvents {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl fmt::Debug for SqliteSecurityEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteSecurityEvents")
            .field("db", &self.db)
            .finish()
    }
}

fn err(f: Failure) -> SecurityEventsError {
    match f {
        Failure::Unavailable(s) => SecurityEventsError::Unavailable(s),
        Failure::Other(s) => SecurityEventsError::Other(s),
    }
}

fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = security_events, check_for_backend(diesel::sqlite::Sqlite))]
struct EventRow {
    id: String,
    user_id: String,
    at: DateTime<Utc>,
    kind: String,
    reason: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
}

impl EventRow {
    fn into_event(self) -> Result<SecurityEvent, SecurityEventsError> {
        let unreadable = |what: &str| {
            SecurityEventsError::Other(format!("a stored event's {what} is unreadable").into())
        };
        let kind = SecurityEventKind::parse(&self.kind, self.reason.as_deref())
            .ok_or_else(|| unreadable("kind"))?;
        let ip = match self.ip {
            Some(ip) => Some(TruncatedIp::parse(&ip).ok_or_else(|| unreadable("address"))?),
            None => None,
        };
        Ok(SecurityEvent {
            id: Uuid::try_parse(&self.id).map_err(|_| unreadable("id"))?,
            user_id: UserId::parse(&self.user_id).ok_or_else(|| unreadable("user id"))?,
            at: self.at,
            kind,
            ip,
            user_agent: self.user_agent,
            request_id: self.request_id,
        })
    }
}

#[async_trait::async_trait]
impl SecurityEvents for SqliteSecurityEvents {
    async fn record(&self, event: &SecurityEvent) -> Result<(), SecurityEventsError> {
        let row = (
            security_events::id.eq(id_text(event.id)),
            security_events::user_id.eq(id_text(event.user_id.as_uuid())),
            security_events::at.eq(event.at),
            security_events::kind.eq(event.kind.as_str().to_owned()),
            security_events::reason.eq(event.kind.reason().map(|r| r.as_str().to_owned())),
            security_events::ip.eq(event.ip.map(|ip| ip.to_string())),
            security_events::user_agent.eq(event.user_agent.clone()),
            security_events::request_id.eq(event.request_id.clone()),
        );
        self.db
            .write(move |conn| {
                diesel::insert_into(security_events::table)
                    .values(row)
                    .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn list(
        &self,
        user: UserId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<SecurityEvent>, SecurityEventsError> {
        let user = id_text(user.as_uuid());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .db
            .read(move |conn| {
                let mut query = security_events::table
                    .filter(security_events::user_id.eq(user))
                    .select(EventRow::as_select())
                    .order((security_events::at.desc(), security_events::id.desc()))
                    .limit(limit)
                    .into_boxed();
                if let Some(c) = after {
                    // Hyphenated lowercase UUIDs sort as text the way they sort as bytes.
                    query = query.filter(
                        security_events::at.lt(c.at).or(security_events::at
                            .eq(c.at)
                            .and(security_events::id.lt(id_text(c.id)))),
                    );
                }
                query.load::<EventRow>(conn)
            })
            .await
            .map_err(err)?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, SecurityEventsError> {
        let n = self
            .db
            .write(move |conn| {
                diesel::delete(security_events::table.filter(security_events::at.lt(before)))
                    .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }
}
