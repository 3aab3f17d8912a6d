//! [`SqliteWebhooks`]: the [`WebhookStore`] port on SQLite.

use std::fmt;
use std::time::Duration;

use auth_core::{
    ClaimedDelivery, DeliveryEntry, DeliveryState, EventCursor, WebhookEndpoint, WebhookEvent,
    WebhookStats, WebhookStore, WebhookStoreError,
};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::database::Database;
use crate::errors::Failure;
use crate::schema::{webhook_deliveries as wd, webhook_endpoints as we};

const PENDING: &str = "pending";

/// [`WebhookStore`] on the `webhook_endpoints` and `webhook_deliveries` tables of a
/// [`SqliteUserRepository`](crate::SqliteUserRepository)'s database, made by
/// [`SqliteUserRepository::webhooks`](crate::SqliteUserRepository::webhooks), on the same
/// pool. Every write is one `BEGIN IMMEDIATE` transaction, so a claim selects and leases
/// while holding SQLite's only write lock (concurrent claims never share a delivery), and an
/// event's deliveries are queued for the endpoints that exist at that moment. An endpoint's
/// kinds are stored comma-separated (kind names are `[a-z_]+`).
#[derive(Clone)]
pub struct SqliteWebhooks {
    db: Database,
}

impl SqliteWebhooks {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl fmt::Debug for SqliteWebhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteWebhooks")
            .field("db", &self.db)
            .finish()
    }
}

fn err(f: Failure) -> WebhookStoreError {
    match f {
        Failure::Unavailable(s) => WebhookStoreError::Unavailable(s),
        Failure::Other(s) => WebhookStoreError::Other(s),
    }
}

fn stored(message: String) -> WebhookStoreError {
    WebhookStoreError::Other(message.into())
}

fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

fn parse_uuid(text: &str) -> Result<Uuid, WebhookStoreError> {
    Uuid::try_parse(text).map_err(|_| stored("a stored webhook id is not a UUID".into()))
}

fn attempts(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = we, check_for_backend(diesel::sqlite::Sqlite))]
struct EndpointRow {
    id: String,
    url: String,
    kinds: String,
    sealed_secret: Vec<u8>,
    created_at: DateTime<Utc>,
}

impl EndpointRow {
    fn into_endpoint(self) -> Result<WebhookEndpoint, WebhookStoreError> {
        Ok(WebhookEndpoint {
            id: parse_uuid(&self.id)?,
            url: self.url,
            kinds: self.kinds.split(',').map(str::to_owned).collect(),
            sealed_secret: self.sealed_secret,
            created_at: self.created_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = wd, check_for_backend(diesel::sqlite::Sqlite))]
struct EntryRow {
    id: String,
    endpoint_id: String,
    event_id: String,
    kind: String,
    state: String,
    attempts: i64,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl EntryRow {
    fn into_entry(self) -> Result<DeliveryEntry, WebhookStoreError> {
        Ok(DeliveryEntry {
            id: parse_uuid(&self.id)?,
            endpoint_id: parse_uuid(&self.endpoint_id)?,
            event_id: parse_uuid(&self.event_id)?,
            kind: self.kind,
            state: DeliveryState::parse(&self.state)
                .ok_or_else(|| stored("a stored delivery has an unknown state".into()))?,
            attempts: attempts(self.attempts),
            last_status: self.last_status.and_then(|s| u16::try_from(s).ok()),
            last_error: self.last_error,
            created_at: self.created_at,
            next_attempt_at: self.next_attempt_at,
            finished_at: self.finished_at,
        })
    }
}

type ClaimedRow = (
    String,
    String,
    String,
    Vec<u8>,
    String,
    String,
    i64,
    DateTime<Utc>,
    DateTime<Utc>,
);

#[async_trait::async_trait]
impl WebhookStore for SqliteWebhooks {
    async fn add_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), WebhookStoreError> {
        let row = (
            we::id.eq(id_text(endpoint.id)),
            we::url.eq(endpoint.url.clone()),
            we::kinds.eq(endpoint.kinds.join(",")),
            we::sealed_secret.eq(endpoint.sealed_secret.clone()),
            we::created_at.eq(endpoint.created_at),
        );
        self.db
            .write(move |conn| diesel::insert_into(we::table).values(row).execute(conn))
            .await
            .map_err(err)?;
        Ok(())
    }

    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, WebhookStoreError> {
        let rows = self
            .db
            .read(|conn| {
                we::table
                    .order((we::created_at.asc(), we::id.asc()))
                    .select(EndpointRow::as_select())
                    .load::<EndpointRow>(conn)
            })
            .await
            .map_err(err)?;
        rows.into_iter().map(EndpointRow::into_endpoint).collect()
    }

    async fn remove_endpoint(&self, id: Uuid) -> Result<bool, WebhookStoreError> {
        let id = id_text(id);
        let n = self
            .db
            .write(move |conn| {
                // The foreign key cascades too; deleting first does not depend on the pragma.
                diesel::delete(wd::table.filter(wd::endpoint_id.eq(&id))).execute(conn)?;
                diesel::delete(we::table.find(&id)).execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn enqueue(
        &self,
        event: &WebhookEvent,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64, WebhookStoreError> {
        let event = event.clone();
        let n = self
            .db
            .write(move |conn| {
                let endpoints: Vec<(String, String)> =
                    we::table.select((we::id, we::kinds)).load(conn)?;
                let mut queued = 0;
                for (endpoint, kinds) in endpoints {
                    if !kinds.split(',').any(|k| k == event.kind) {
                        continue;
                    }
                    queued += diesel::insert_into(wd::table)
                        .values((
                            wd::id.eq(id_text(Uuid::new_v4())),
                            wd::endpoint_id.eq(endpoint),
                            wd::event_id.eq(id_text(event.event_id)),
                            wd::kind.eq(&event.kind),
                            wd::payload.eq(&event.payload),
                            wd::state.eq(PENDING),
                            wd::attempts.eq(0),
                            wd::created_at.eq(now),
                            wd::next_attempt_at.eq(now),
                            wd::expires_at.eq(expires_at),
                        ))
                        .execute(conn)?;
                }
                Ok(queued)
            })
            .await
            .map_err(err)?;
        Ok(count(n))
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, WebhookStoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = lease_end(now, lease);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .db
            .write(move |conn| {
                let due: Vec<String> = wd::table
                    .filter(wd::state.eq(PENDING))
                    .filter(wd::next_attempt_at.le(now))
                    .filter(wd::lease_until.is_null().or(wd::lease_until.le(now)))
                    .order((wd::next_attempt_at.asc(), wd::created_at.asc()))
                    .limit(limit)
                    .select(wd::id)
                    .load(conn)?;
                let mut claimed = Vec::with_capacity(due.len());
                for id in due {
                    let lease = id_text(Uuid::new_v4());
                    diesel::update(wd::table.find(&id))
                        .set((wd::lease_id.eq(&lease), wd::lease_until.eq(until)))
                        .execute(conn)?;
                    let row: ClaimedRow = wd::table
                        .inner_join(we::table)
                        .filter(wd::id.eq(&id))
                        .select((
                            wd::id,
                            wd::endpoint_id,
                            we::url,
                            we::sealed_secret,
                            wd::kind,
                            wd::payload,
                            wd::attempts,
                            wd::created_at,
                            wd::expires_at,
                        ))
                        .first(conn)?;
                    claimed.push((row, lease));
                }
                Ok(claimed)
            })
            .await
            .map_err(err)?;
        rows.into_iter()
            .map(|(r, lease)| {
                Ok(ClaimedDelivery {
                    id: parse_uuid(&r.0)?,
                    endpoint_id: parse_uuid(&r.1)?,
                    url: r.2,
                    sealed_secret: r.3,
                    kind: r.4,
                    payload: r.5,
                    attempts: attempts(r.6),
                    created_at: r.7,
                    expires_at: r.8,
                    lease: parse_uuid(&lease)?,
                })
            })
            .collect()
    }

    async fn delivered(
        &self,
        id: Uuid,
        lease: Uuid,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<bool, WebhookStoreError> {
        let (id, lease) = (id_text(id), id_text(lease));
        let n = self
            .db
            .write(move |conn| {
                diesel::update(
                    wd::table
                        .find(id)
                        .filter(wd::lease_id.eq(lease))
                        .filter(wd::state.eq(PENDING)),
                )
                .set((
                    wd::state.eq(DeliveryState::Delivered.as_str()),
                    wd::attempts.eq(wd::attempts + 1),
                    wd::last_status.eq(Some(i64::from(status))),
                    wd::last_error.eq(None::<String>),
                    wd::finished_at.eq(Some(now)),
                    wd::lease_id.eq(None::<String>),
                    wd::lease_until.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn retry_at(
        &self,
        id: Uuid,
        lease: Uuid,
        at: DateTime<Utc>,
        status: Option<u16>,
        error: &str,
    ) -> Result<bool, WebhookStoreError> {
        let (id, lease, error) = (id_text(id), id_text(lease), error.to_owned());
        let n = self
            .db
            .write(move |conn| {
                diesel::update(
                    wd::table
                        .find(id)
                        .filter(wd::lease_id.eq(lease))
                        .filter(wd::state.eq(PENDING)),
                )
                .set((
                    wd::attempts.eq(wd::attempts + 1),
                    wd::next_attempt_at.eq(at),
                    wd::last_status.eq(status.map(i64::from)),
                    wd::last_error.eq(Some(error)),
                    wd::lease_id.eq(None::<String>),
                    wd::lease_until.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn bury(
        &self,
        id: Uuid,
        lease: Uuid,
        attempted: bool,
        status: Option<u16>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, WebhookStoreError> {
        let (id, lease, error) = (id_text(id), id_text(lease), error.to_owned());
        let n = self
            .db
            .write(move |conn| {
                diesel::update(
                    wd::table
                        .find(id)
                        .filter(wd::lease_id.eq(lease))
                        .filter(wd::state.eq(PENDING)),
                )
                .set((
                    wd::state.eq(DeliveryState::Dead.as_str()),
                    wd::attempts.eq(wd::attempts + i64::from(attempted)),
                    wd::last_status.eq(status.map(i64::from)),
                    wd::last_error.eq(Some(error)),
                    wd::finished_at.eq(Some(now)),
                    wd::lease_id.eq(None::<String>),
                    wd::lease_until.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(n > 0)
    }

    async fn deliveries(
        &self,
        endpoint: Uuid,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<DeliveryEntry>, WebhookStoreError> {
        let endpoint = id_text(endpoint);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .db
            .read(move |conn| {
                let mut query = wd::table
                    .filter(wd::endpoint_id.eq(endpoint))
                    .select(EntryRow::as_select())
                    .order((wd::created_at.desc(), wd::id.desc()))
                    .limit(limit)
                    .into_boxed();
                if let Some(c) = after {
                    // Hyphenated lowercase UUIDs sort as text the way they sort as bytes.
                    query = query.filter(
                        wd::created_at
                            .lt(c.at)
                            .or(wd::created_at.eq(c.at).and(wd::id.lt(id_text(c.id)))),
                    );
                }
                query.load::<EntryRow>(conn)
            })
            .await
            .map_err(err)?;
        rows.into_iter().map(EntryRow::into_entry).collect()
    }

    async fn stats(&self) -> Result<WebhookStats, WebhookStoreError> {
        let (pending, oldest_pending, dead) = self
            .db
            .read(|conn| {
                let pending: i64 = wd::table
                    .filter(wd::state.eq(PENDING))
                    .count()
                    .get_result(conn)?;
                let oldest: Option<DateTime<Utc>> = wd::table
                    .filter(wd::state.eq(PENDING))
                    .order(wd::created_at.asc())
                    .select(wd::created_at)
                    .first(conn)
                    .optional()?;
                let dead: i64 = wd::table
                    .filter(wd::state.eq(DeliveryState::Dead.as_str()))
                    .count()
                    .get_result(conn)?;
                Ok((pending, oldest, dead))
            })
            .await
            .map_err(err)?;
        Ok(WebhookStats {
            pending: u64::try_from(pending).unwrap_or(0),
            oldest_pending,
            dead: u64::try_from(dead).unwrap_or(0),
        })
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, WebhookStoreError> {
        let n = self
            .db
            .write(move |conn| {
                diesel::delete(
                    wd::table
                        .filter(wd::state.ne(PENDING))
                        .filter(wd::finished_at.lt(before)),
                )
                .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(count(n))
    }
}
