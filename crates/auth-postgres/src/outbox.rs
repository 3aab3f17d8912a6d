//! [`PgOutbox`]: the [`OutboxStore`] port on PostgreSQL, in the user database.

use std::time::Duration;

use auth_core::{
    ClaimedMail, EmailAddress, MailState, OutboxEntry, OutboxError, OutboxStats, OutboxStore,
    QueuedMail, SuppressionReason, UserRepoError,
};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bytea, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use uuid::Uuid;

use crate::repository::PgUserRepository;

/// The mail outbox in the `mail_outbox` and `mail_suppressions` tables, on the pool (and with
/// the timeouts) of a [`PgUserRepository`]: see [`PgUserRepository::outbox`].
///
/// Couriers on any number of instances claim with `FOR UPDATE SKIP LOCKED`, so concurrent
/// claims never share a message, and every later statement about a message names its lease.
/// Enqueueing and superseding are one statement.
#[derive(Clone, Debug)]
pub struct PgOutbox {
    repo: PgUserRepository,
}

impl PgUserRepository {
    /// The mail outbox in the same database, sharing this repository's pool and timeouts.
    pub fn outbox(&self) -> PgOutbox {
        PgOutbox { repo: self.clone() }
    }
}

fn outbox_error(error: UserRepoError) -> OutboxError {
    match error {
        UserRepoError::Unavailable(e) => OutboxError::Unavailable(e),
        other => OutboxError::Other(Box::new(other)),
    }
}

fn lease_end(now: DateTime<Utc>, lease: Duration) -> DateTime<Utc> {
    chrono::TimeDelta::from_std(lease)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[derive(QueryableByName)]
struct ClaimedRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    recipient: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    supersedes: Option<String>,
    #[diesel(sql_type = Bytea)]
    sealed: Vec<u8>,
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
    #[diesel(sql_type = Text)]
    recipient: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
}

#[derive(QueryableByName)]
struct SuppressionRow {
    #[diesel(sql_type = Timestamptz)]
    until: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    reason: String,
}

#[derive(QueryableByName)]
struct StatsRow {
    #[diesel(sql_type = BigInt)]
    pending: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest_pending: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    dead: i64,
    #[diesel(sql_type = BigInt)]
    suppressed: i64,
}

/// Only rows written outside this adapter can fail here; the address is not put in the error.
fn address(id: Uuid, stored: &str) -> Result<EmailAddress, OutboxError> {
    EmailAddress::parse(stored).map_err(|e| {
        OutboxError::Other(format!("outbox message {id} has an invalid stored address: {e}").into())
    })
}

fn suppression_key(to: &EmailAddress) -> String {
    to.as_str().to_lowercase()
}

/// The statement that queues `mail`: one statement, so the superseded messages go exactly
/// when the new one arrives. Also run by the repository inside the transaction of the change
/// a mail belongs to.
pub(crate) fn enqueue_query(
    mail: &QueuedMail,
) -> impl diesel_async::methods::ExecuteDsl<diesel_async::AsyncPgConnection> + Send + '_ {
    diesel::sql_query(
        "WITH superseded AS (
             DELETE FROM mail_outbox
             WHERE $4::text IS NOT NULL AND supersedes = $4 AND state = 'pending'
               AND lower(recipient) = lower($2)
               AND (lease_until IS NULL OR lease_until <= $6)
         )
         INSERT INTO mail_outbox
             (id, recipient, kind, supersedes, sealed, created_at, next_attempt_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6, $7)",
    )
    .bind::<SqlUuid, _>(mail.id)
    .bind::<Text, _>(mail.to.as_str())
    .bind::<Text, _>(&mail.kind)
    .bind::<Nullable<Text>, _>(mail.supersedes.as_deref())
    .bind::<Bytea, _>(&mail.sealed)
    .bind::<Timestamptz, _>(mail.created_at)
    .bind::<Timestamptz, _>(mail.expires_at)
}

impl PgOutbox {
    /// Runs one statement that changes rows; how many.
    async fn execute<Q>(&self, query: Q) -> Result<usize, OutboxError>
    where
        Q: diesel_async::methods::ExecuteDsl<diesel_async::AsyncPgConnection> + Send,
    {
        self.repo.execute_bounded(query).await.map_err(outbox_error)
    }

    /// Runs one statement that returns rows; all of them.
    async fn load<'q, Q, R>(&self, query: Q) -> Result<Vec<R>, OutboxError>
    where
        Q: diesel_async::methods::LoadQuery<'q, diesel_async::AsyncPgConnection, R> + Send + 'q,
        R: Send,
    {
        self.repo.load_bounded(query).await.map_err(outbox_error)
    }
}

#[async_trait::async_trait]
impl OutboxStore for PgOutbox {
    #[tracing::instrument(name = "pg.outbox.enqueue", skip_all, fields(mail_id = %mail.id))]
    async fn enqueue(&self, mail: &QueuedMail) -> Result<(), OutboxError> {
        self.execute(enqueue_query(mail)).await.map(|_| ())
    }

    #[tracing::instrument(name = "pg.outbox.claim", skip_all)]
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedMail>, OutboxError> {
        let lease_id = Uuid::new_v4();
        let query = diesel::sql_query(
            "WITH due AS (
                 SELECT id FROM mail_outbox
                 WHERE state = 'pending' AND next_attempt_at <= $1
                   AND (lease_until IS NULL OR lease_until <= $1)
                 ORDER BY next_attempt_at, created_at
                 LIMIT $2
                 FOR UPDATE SKIP LOCKED
             )
             UPDATE mail_outbox m SET lease_id = $3, lease_until = $4
             FROM due WHERE m.id = due.id
             RETURNING m.id, m.recipient, m.kind, m.supersedes, m.sealed, m.attempts,
                       m.created_at, m.next_attempt_at, m.expires_at",
        )
        .bind::<Timestamptz, _>(now)
        .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind::<SqlUuid, _>(lease_id)
        .bind::<Timestamptz, _>(lease_end(now, lease));
        let mut rows: Vec<ClaimedRow> = self.load(query).await?;
        rows.sort_by_key(|r| (r.next_attempt_at, r.created_at));
        rows.into_iter()
            .map(|r| {
                Ok(ClaimedMail {
                    mail: QueuedMail {
                        to: address(r.id, &r.recipient)?,
                        id: r.id,
                        kind: r.kind,
                        supersedes: r.supersedes,
                        sealed: r.sealed,
                        created_at: r.created_at,
                        expires_at: r.expires_at,
                    },
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                    lease: lease_id,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "pg.outbox.remove", skip_all, fields(mail_id = %id))]
    async fn remove(&self, id: Uuid, lease: Uuid) -> Result<bool, OutboxError> {
        let query = diesel::sql_query("DELETE FROM mail_outbox WHERE id = $1 AND lease_id = $2")
            .bind::<SqlUuid, _>(id)
            .bind::<SqlUuid, _>(lease);
        Ok(self.execute(query).await? > 0)
    }

    #[tracing::instrument(name = "pg.outbox.retry_at", skip_all, fields(mail_id = %id))]
    async fn retry_at(
        &self,
        id: Uuid,
        lease: Uuid,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, OutboxError> {
        let query = diesel::sql_query(
            "UPDATE mail_outbox
             SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4,
                 lease_id = NULL, lease_until = NULL
             WHERE id = $1 AND lease_id = $2",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(lease)
        .bind::<Timestamptz, _>(at)
        .bind::<Text, _>(error);
        Ok(self.execute(query).await? > 0)
    }

    #[tracing::instrument(name = "pg.outbox.bury", skip_all, fields(mail_id = %id))]
    async fn bury(&self, id: Uuid, lease: Uuid, error: &str) -> Result<bool, OutboxError> {
        let query = diesel::sql_query(
            "UPDATE mail_outbox
             SET state = 'dead', attempts = attempts + 1, last_error = $3,
                 lease_id = NULL, lease_until = NULL
             WHERE id = $1 AND lease_id = $2",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(lease)
        .bind::<Text, _>(error);
        Ok(self.execute(query).await? > 0)
    }

    #[tracing::instrument(name = "pg.outbox.suppress", skip_all)]
    async fn suppress(
        &self,
        to: &EmailAddress,
        until: DateTime<Utc>,
        reason: SuppressionReason,
    ) -> Result<(), OutboxError> {
        let query = diesel::sql_query(
            "INSERT INTO mail_suppressions (address, until, reason) VALUES ($1, $2, $3)
             ON CONFLICT (address) DO UPDATE SET until = EXCLUDED.until, reason = EXCLUDED.reason
             WHERE mail_suppressions.until < EXCLUDED.until",
        )
        .bind::<Text, _>(suppression_key(to))
        .bind::<Timestamptz, _>(until)
        .bind::<Text, _>(reason.as_str());
        self.execute(query).await.map(|_| ())
    }

    #[tracing::instrument(name = "pg.outbox.suppression", skip_all)]
    async fn suppression(
        &self,
        to: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, SuppressionReason)>, OutboxError> {
        let query = diesel::sql_query(
            "SELECT until, reason FROM mail_suppressions WHERE address = $1 AND until > $2",
        )
        .bind::<Text, _>(suppression_key(to))
        .bind::<Timestamptz, _>(now);
        let rows: Vec<SuppressionRow> = self.load(query).await?;
        Ok(rows.into_iter().next().map(|row| {
            let reason =
                SuppressionReason::parse(&row.reason).unwrap_or(SuppressionReason::Operator);
            (row.until, reason)
        }))
    }

    #[tracing::instrument(name = "pg.outbox.stats", skip_all)]
    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, OutboxError> {
        let query = diesel::sql_query(
            "SELECT
                 (SELECT count(*) FROM mail_outbox WHERE state = 'pending') AS pending,
                 (SELECT min(created_at) FROM mail_outbox WHERE state = 'pending')
                     AS oldest_pending,
                 (SELECT count(*) FROM mail_outbox WHERE state = 'dead') AS dead,
                 (SELECT count(*) FROM mail_suppressions WHERE until > $1) AS suppressed",
        )
        .bind::<Timestamptz, _>(now);
        let row: StatsRow = self
            .load(query)
            .await?
            .pop()
            .ok_or_else(|| OutboxError::Other("the outbox counts returned no row".into()))?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(OutboxStats {
            pending: count(row.pending),
            oldest_pending: row.oldest_pending,
            dead: count(row.dead),
            suppressed: count(row.suppressed),
        })
    }

    #[tracing::instrument(name = "pg.outbox.list", skip_all)]
    async fn list(&self, state: MailState, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        let query = diesel::sql_query(
            "SELECT id, recipient, kind, state, attempts, created_at, next_attempt_at,
                    expires_at, last_error
             FROM mail_outbox WHERE state = $1 ORDER BY created_at, id LIMIT $2",
        )
        .bind::<Text, _>(state.as_str().to_owned())
        .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows: Vec<EntryRow> = self.load(query).await?;
        rows.into_iter()
            .map(|r| {
                Ok(OutboxEntry {
                    to: address(r.id, &r.recipient)?,
                    id: r.id,
                    kind: r.kind,
                    state: if r.state == "dead" {
                        MailState::Dead
                    } else {
                        MailState::Pending
                    },
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                    created_at: r.created_at,
                    next_attempt_at: r.next_attempt_at,
                    expires_at: r.expires_at,
                    last_error: r.last_error,
                })
            })
            .collect()
    }

    #[tracing::instrument(name = "pg.outbox.revive", skip_all)]
    async fn revive(&self, id: Option<Uuid>, now: DateTime<Utc>) -> Result<u64, OutboxError> {
        let query = diesel::sql_query(
            "UPDATE mail_outbox
             SET state = 'pending', attempts = 0, next_attempt_at = $2,
                 lease_id = NULL, lease_until = NULL
             WHERE state = 'dead' AND ($1::uuid IS NULL OR id = $1)",
        )
        .bind::<Nullable<SqlUuid>, _>(id)
        .bind::<Timestamptz, _>(now);
        Ok(self.execute(query).await? as u64)
    }

    #[tracing::instrument(name = "pg.outbox.purge", skip_all)]
    async fn purge(&self, id: Option<Uuid>) -> Result<u64, OutboxError> {
        let query = diesel::sql_query(
            "DELETE FROM mail_outbox WHERE state = 'dead' AND ($1::uuid IS NULL OR id = $1)",
        )
        .bind::<Nullable<SqlUuid>, _>(id);
        Ok(self.execute(query).await? as u64)
    }

    #[tracing::instrument(name = "pg.outbox.sweep", skip_all)]
    async fn sweep(&self, now: DateTime<Utc>) -> Result<u64, OutboxError> {
        let query = diesel::sql_query(
            "WITH ended AS (DELETE FROM mail_suppressions WHERE until <= $1)
             DELETE FROM mail_outbox WHERE expires_at < $1",
        )
        .bind::<Timestamptz, _>(now);
        Ok(self.execute(query).await? as u64)
    }
}
