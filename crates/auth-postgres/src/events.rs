//! [`PgSecurityEvents`]: the [`SecurityEvents`] port on PostgreSQL.

use auth_core::{
    EventCursor, SecurityEvent, SecurityEventKind, SecurityEvents, SecurityEventsError,
    TruncatedIp, UserId, UserRepoError,
};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::repository::PgUserRepository;

/// [`SecurityEvents`] on the `security_events` table of the repository's database, sharing
/// its pool and timeouts. Rows are not tied to the `users` row.
#[derive(Clone, Debug)]
pub struct PgSecurityEvents {
    repo: PgUserRepository,
}

impl PgUserRepository {
    /// The security event store in the same database, sharing this repository's pool.
    pub fn security_events(&self) -> PgSecurityEvents {
        PgSecurityEvents { repo: self.clone() }
    }
}

fn events_error(error: UserRepoError) -> SecurityEventsError {
    match error {
        UserRepoError::Unavailable(e) => SecurityEventsError::Unavailable(e),
        other => SecurityEventsError::Other(Box::new(other)),
    }
}

#[derive(QueryableByName)]
struct EventRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    user_agent: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
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
            id: self.id,
            user_id: UserId::from_uuid(self.user_id),
            at: self.at,
            kind,
            ip,
            user_agent: self.user_agent,
            request_id: self.request_id,
        })
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[async_trait::async_trait]
impl SecurityEvents for PgSecurityEvents {
    #[tracing::instrument(name = "pg.events.record", skip_all)]
    async fn record(&self, event: &SecurityEvent) -> Result<(), SecurityEventsError> {
        let query = diesel::sql_query(
            "INSERT INTO security_events
                 (id, user_id, at, kind, reason, ip, user_agent, request_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind::<SqlUuid, _>(event.id)
        .bind::<SqlUuid, _>(event.user_id.as_uuid())
        .bind::<Timestamptz, _>(event.at)
        .bind::<Text, _>(event.kind.as_str())
        .bind::<Nullable<Text>, _>(event.kind.reason().map(|r| r.as_str()))
        .bind::<Nullable<Text>, _>(event.ip.map(|ip| ip.to_string()))
        .bind::<Nullable<Text>, _>(event.user_agent.clone())
        .bind::<Nullable<Text>, _>(event.request_id.clone());
        let mut conn = self.repo.checkout().await.map_err(events_error)?;
        let outcome =
            tokio::time::timeout(self.repo.query_timeout(), query.execute(&mut conn)).await;
        self.repo.settle(conn, outcome).map_err(events_error)?;
        Ok(())
    }

    #[tracing::instrument(name = "pg.events.list", skip_all)]
    async fn list(
        &self,
        user: UserId,
        after: Option<EventCursor>,
        limit: usize,
    ) -> Result<Vec<SecurityEvent>, SecurityEventsError> {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let (at, id) = match after {
            Some(c) => (Some(c.at), Some(c.id)),
            None => (None, None),
        };
        let query = diesel::sql_query(
            "SELECT id, user_id, at, kind, reason, ip, user_agent, request_id
             FROM security_events
             WHERE user_id = $1 AND ($2::timestamptz IS NULL OR (at, id) < ($2, $3))
             ORDER BY at DESC, id DESC
             LIMIT $4",
        )
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Nullable<Timestamptz>, _>(at)
        .bind::<Nullable<SqlUuid>, _>(id)
        .bind::<Integer, _>(limit);
        let mut conn = self.repo.checkout().await.map_err(events_error)?;
        let outcome =
            tokio::time::timeout(self.repo.query_timeout(), query.load::<EventRow>(&mut conn))
                .await;
        let rows = self.repo.settle(conn, outcome).map_err(events_error)?;
        rows.into_iter().map(EventRow::into_event).collect()
    }

    #[tracing::instrument(name = "pg.events.prune", skip_all)]
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, SecurityEventsError> {
        let query = diesel::sql_query(
            "WITH gone AS (DELETE FROM security_events WHERE at < $1 RETURNING 1)
             SELECT count(*) AS n FROM gone",
        )
        .bind::<Timestamptz, _>(before);
        let mut conn = self.repo.checkout().await.map_err(events_error)?;
        let outcome =
            tokio::time::timeout(self.repo.query_timeout(), query.load::<Count>(&mut conn)).await;
        let rows = self.repo.settle(conn, outcome).map_err(events_error)?;
        Ok(rows
            .into_iter()
            .next()
            .map_or(0, |c: Count| u64::try_from(c.n).unwrap_or(0)))
    }
}
