//! [`PgWebhooks`]: the [`WebhookStore`] port on PostgreSQL, in the user database.

use std::time::Duration;

use auth_core::{
    ClaimedDelivery, DeliveryEntry, DeliveryState, EventCursor, UserRepoError, WebhookEndpoint,
    WebhookEvent, WebhookStats, WebhookStore, WebhookStoreError,
};
use chrono::{DateTime, Utc};
use diesel::sql_types::{
    Array, BigInt, Bool, Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel::QueryableByName;
use uuid::Uuid;

use crate::repository::PgUserRepository;

/// Webhook endpoints and their delivery queue in the `webhook_endpoints` and
/// `webhook_deliveries` tables, on the pool (and with the timeouts) of a
/// [`PgUserRepository`]: see [`PgUserRepository::webhooks`].
///
/// Couriers on any number of instances claim with `FOR UPDATE SKIP LOCKED`, and every later
/// statement about a delivery names its lease. Queueing an event's deliveries is one
/// `INSERT ... SELECT` over the endpoints that want its kind, so an endpoint removed meanwhile
/// gets none; removing an endpoint removes its deliveries (`ON DELETE CASCADE`).
#[derive(Clone, Debug)]
pub struct PgWebhooks {
    repo: PgUserRepository,
}

impl PgUserRepository {
    /// The webhook store in the same database, sharing this repository's pool and timeouts.
    pub fn webhooks(&self) -> PgWebhooks {
        PgWebhooks { repo: self.clone() }
    }
}

fn store_error(error: UserRepoError) -> WebhookStoreError {
    match error {
        UserRepoError::Unavailable(e) => WebhookStoreError::Unavailable(e),
        other => WebhookStoreError::Other(Box::new(other)),
    }
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

#[derive(QueryableByName)]
struct EndpointRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Array<Text>)]
    kinds: Vec<String>,
    #[diesel(sql_type = Bytea)]
    sealed_secret: Vec<u8>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    endpoint_id: Uuid,
    #[diesel(sql_type = Text)]
    url: String,
    #[diesel(sql_type = Bytea)]
    sealed_secret: Vec<u8>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    payload: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct EntryRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    endpoint_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Nullable<Integer>)]
    last_status: Option<i32>,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    finished_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct StatsRow {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_pending: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    dead: i64,
}

fn status(stored: Option<i32>) -> Option<u16> {
    stored.and_then(|s| u16::try_from(s).ok())
}

impl PgWebhooks {
    async fn execute<Q>(&self, query: Q) -> Result<usize, WebhookStoreError>
    where
        Q: diesel_async::methods::ExecuteDsl<diesel_async::AsyncPgConnection> + Send,
    {
        self.repo.execute_bounded(query).await.map_err(store_error)
    }

    async fn load<'q, Q, R>(&self, query: Q) -> Result<Vec<R>, WebhookStoreError>
    where
        Q: diesel_async::methods::LoadQuery<'q, diesel_async::AsyncPgConnection, R> + Send + 'q,
        R: Send,
    {
        self.repo.load_bounded(query).await.map_err(store_error)
    }
}

#[async_trait::async_trait]
impl WebhookStore for PgWebhooks {
    #[tracing::instrument(name = "pg.webhooks.add_endpoint", skip_all, fields(webhook_id = %endpoint.id))]
    async fn add_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<(), WebhookStoreError> {
        let query = diesel::sql_query(
            "INSERT INTO webhook_endpoints (id, url, kinds, sealed_secret, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind::<SqlUuid, _>(endpoint.id)
        .bind::<Text, _>(&endpoint.url)
        .bind::<Array<Text>, _>(&endpoint.kinds)
        .bind::<Bytea, _>(&endpoint.sealed_secret)
        .bind::<Timestamptz, _>(endpoint.created_at);
        self.execute(query).await.map(|_| ())
    }

    #[tracing::instrument(name = "pg.webhooks.endpoints", skip_all)]
    async fn endpoints(&self) -> Result<Vec<WebhookEndpoint>, WebhookStoreError> {
        let query = diesel::sql_query(
            "SELECT id, url, kinds, sealed_secret, created_at FROM webhook_endpoints
             ORDER BY created_at, id",
        );
        let rows: Vec<EndpointRow> = self.load(query).await?;
        Ok(rows
            .into_iter()
            .map(|r| WebhookEndpoint {
                id: r.id,
                url: r.url,
                kinds: r.kinds,
                sealed_secret: r.sealed_secret,
                created_at: r.created_at,
            })
            .collect())
    }

    #[tracing::instrument(name = "pg.webhooks.remove_endpoint", skip_all, fields(webhook_id = %id))]
    async fn remove_endpoint(&self, id: Uuid) -> Result<bool, WebhookStoreError> {
        let query =
            diesel::sql_query("DELETE FROM webhook_endpoints WHERE id = $1").bind::<SqlUuid, _>(id);
        Ok(self.execute(query).await? > 0)
    }

    #[tracing::instrument(name = "pg.webhooks.enqueue", skip_all, fields(event_id = %event.event_id))]
    async fn enqueue(
        &self,
        event: &WebhookEvent,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<u64, WebhookStoreError> {
        let query = diesel::sql_query(
            "INSERT INTO webhook_deliveries
                 (id, endpoint_id, event_id, kind, payload, created_at, next_attempt_at,
                  expires_at)
             SELECT gen_random_uuid(), e.id, $1, $2, $3, $4, $4, $5
             FROM webhook_endpoints e WHERE $2 = ANY (e.kinds)",
        )
        .bind::<SqlUuid, _>(event.event_id)
        .bind::<Text, _>(&event.kind)
        .bind::<Text, _>(&event.payload)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(expires_at);
        Ok(count(self.execute(query).await?))
    }

    #[tracing::instrument(name = "pg.webhooks.claim", skip_all)]
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, WebhookStoreError> {
        let lease_id = Uuid::new_v4();
        let query = diesel::sql_query(
            "WITH due AS (
                 SELECT id FROM webhook_deliveries
                 WHERE state = 'pending' AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until <= $1)
                 ORDER BY next_attempt_at, created_at
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE webhook_deliveries d SET lease_id = $3, lease_until = $4
             FROM due, webhook_endpoints e
             WHERE d.id = due.id AND e.id = d.endpoint_id
             RETURNING d.id, d.endpoint_id, e.url, e.sealed_secret, d.kind, d.payload,
                       d.attempts, d.created_at, d.next_attempt_at, d.expires_at",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(sql_limit(limit))
        .bind::<SqlUuid, _>(lease_id)
        .bind::<Timestamptz, _>(lease_end(now, lease));
        let mut rows: Vec<ClaimedRow> = self.load(query).await?;
        rows.sort_by_key(|r| (r.next_attempt_at, r.created_at));
        Ok(rows
            .into_iter()
            .map(|r| ClaimedDelivery {
                id: r.id,
                endpoint_id: r.endpoint_id,
                url: r.url,
                sealed_secret: r.sealed_secret,
                kind: r.kind,
                payload: r.payload,
                attempts: u32::try_from(r.attempts).unwrap_or(0),
                created_at: r.created_at,
                expires_at: r.expires_at,
                lease: lease_id,
            })
            .collect())
    }

    #[tracing::instrument(name = "pg.webhooks.delivered", skip_all, fields(delivery_id = %id))]
    async fn delivered(
        &self,
        id: Uuid,
        lease: Uuid,
        status: u16,
        now: DateTime<Utc>,
    ) -> Result<bool, WebhookStoreError> {
        let query = diesel::sql_query(
            "UPDATE webhook_deliveries
             SET state = 'delivered', attempts = attempts + 1, last_status = $3,
                 last_error = NULL, finished_at = $4, lease_id = NULL, lease_until = NULL
             WHERE id = $1 AND lease_id = $2 AND state = 'pending'",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(lease)
        .bind::<Integer, _>(i32::from(status))
        .bind::<Timestamptz, _>(now);
        Ok(self.execute(query).await? > 0)
    }

    #[tracing::instrument(name = "pg.webhooks.retry_at", skip_all, fields(delivery_id = %id))]
    async fn retry_at(
        &self,
        id: Uuid,
        lease: Uuid,
        at: DateTime<Utc>,
        status: Option<u16>,
        error: &str,
    ) -> Result<bool, WebhookStoreError> {
        let query = diesel::sql_query(
            "UPDATE webhook_deliveries
             SET attempts = attempts + 1, next_attempt_at = $3, last_status = $4,
                 last_error = $5, lease_id = NULL, lease_until = NULL
             WHERE id = $1 AND lease_id = $2 AND state = 'pending'",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(lease)
        .bind::<Timestamptz, _>(at)
        .bind::<Nullable<Integer>, _>(status.map(i32::from))
        .bind::<Text, _>(error);
        Ok(self.execute(query).await? > 0)
    }

    #[tracing::instrument(name = "pg.webhooks.bury", skip_all, fields(delivery_id = %id))]
    async fn bury(
        &self,
        id: Uuid,
        lease: Uuid,
        attempted: bool,
        status: Option<u16>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, WebhookStoreError> {
        let query = diesel::sql_query(
            "UPDATE webhook_deliveries
             SET state = 'dead', attempts = attempts + CASE WHEN $3 THEN 1 ELSE 0 END,
                 last_status = $4, last_error = $5, finished_at = $6,
                 lease_id = NULL, lease_until = NULL
             WHERE id = $1 AND lease_id = $2 AND state = 'pending'",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(lease)
        .bind::<Bool, _>(attempted)
        .bind::<Nullable<Integer>, _>(status.map(i32::from))
        .bind::<Text, _>(error)
        .bind::<Timestamptz, _>(now);
        Ok(self.execute(query).await? > 0)
    }

    #[tracing::instrument(name = "pg.webhooks.deliveries", skip_all, fields(webhook_id = %endpoint))]
    async fn deliveries(
        &self,
        endpoint: Uuid,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<DeliveryEntry>, WebhookStoreError> {
        let query = diesel::sql_query(
            "SELECT id, endpoint_id, event_id, kind, state, attempts, last_status, last_error,
                    created_at, next_attempt_at, finished_at
             FROM webhook_deliveries
             WHERE endpoint_id = $1
               AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
             ORDER BY created_at DESC, id DESC
             LIMIT $4",
        )
        .bind::<SqlUuid, _>(endpoint)
        .bind::<Nullable<Timestamptz>, _>(after.map(|c| c.at))
        .bind::<Nullable<SqlUuid>, _>(after.map(|c| c.id))
        .bind::<BigInt, _>(sql_limit(limit));
        let rows: Vec<EntryRow> = self.load(query).await?;
        rows.into_iter()
            .map(|r| {
                let state = DeliveryState::parse(&r.state).ok_or_else(|| {
                    WebhookStoreError::Other(
                        format!("delivery {} has an unknown state", r.id).into(),
                    )
                })?;
                Ok(DeliveryEntry {
                    id: r.id,
                    endpoint_id: r.endpoint_id,
                    event_id: r.event_id,
                    kind: r.kind,
                    state,
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                    last_status: status(r.last_status),
                    last_error: r.last_error,
                    created_at: r.created_at,
                    next_attempt_at: r.next_attempt_at,
                    finished_at: r.finished_at,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "pg.webhooks.stats", skip_all)]
    async fn stats(&self) -> Result<WebhookStats, WebhookStoreError> {
        let query = diesel::sql_query(
            "SELECT
                 (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending') AS pending,
                 (SELECT min(created_at) FROM webhook_deliveries WHERE state = 'pending')
                     AS oldest_pending,
                 (SELECT count(*) FROM webhook_deliveries WHERE state = 'dead') AS dead",
        );
        let row: StatsRow =
            self.load(query).await?.pop().ok_or_else(|| {
                WebhookStoreError::Other("the webhook counts returned no row".into())
            })?;
        Ok(WebhookStats {
            pending: u64::try_from(row.pending).unwrap_or(0),
            oldest_pending: row.oldest_pending,
            dead: u64::try_from(row.dead).unwrap_or(0),
        })
    }

    #[tracing::instrument(name = "pg.webhooks.prune", skip_all)]
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, WebhookStoreError> {
        let query = diesel::sql_query(
            "DELETE FROM webhook_deliveries
             WHERE state IN ('delivered', 'dead') AND finished_at < $1",
        )
        .bind::<Timestamptz, _>(before);
        Ok(count(self.execute(query).await?))
    }
}
