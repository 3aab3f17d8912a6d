//! [`PgTotpStore`]: the [`TotpStore`] port on PostgreSQL.
//!
//! Each compare-and-set (the last accepted step, a recovery code, a second-step token) is one
//! statement, so it has exactly one winner among concurrent callers on any instance: an
//! `UPDATE` or `DELETE` re-checks its condition on the row it locked. Turning a secret on and
//! replacing its recovery codes are transactions that first lock the secret's row.

use auth_core::{
    ClientBinding, MfaChallenge, RecoveryCodeHash, StoredTotp, TokenHash, TotpStore,
    TotpStoreError, UserId, UserRepoError,
};
use chrono::{DateTime, Utc};
use diesel::result::QueryResult;
use diesel::sql_types::{Array, BigInt, Bytea, Nullable, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use diesel_async::scoped_futures::{ScopedBoxFuture, ScopedFutureExt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::repository::PgUserRepository;

/// [`TotpStore`] on the `totp_secrets`, `totp_recovery_codes` and `mfa_challenges` tables of
/// the repository's database (rows go with their user), sharing its pool and timeouts.
#[derive(Clone, Debug)]
pub struct PgTotpStore {
    repo: PgUserRepository,
}

impl PgUserRepository {
    /// The second-factor store in the same database, sharing this repository's pool.
    pub fn totp(&self) -> PgTotpStore {
        PgTotpStore { repo: self.clone() }
    }
}

fn totp_error(error: UserRepoError) -> TotpStoreError {
    match error {
        UserRepoError::Unavailable(e) => TotpStoreError::Unavailable(e),
        other => TotpStoreError::Other(Box::new(other)),
    }
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

fn hashes(codes: &[RecoveryCodeHash]) -> Vec<Vec<u8>> {
    codes.iter().map(|c| c.0.to_vec()).collect()
}

#[derive(QueryableByName)]
struct SecretRow {
    #[diesel(sql_type = Bytea)]
    sealed_secret: Vec<u8>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    enabled_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_step: Option<i64>,
    #[diesel(sql_type = BigInt)]
    codes_left: i64,
}

#[derive(QueryableByName)]
struct UsedRow {
    #[diesel(sql_type = BigInt)]
    used: i64,
    #[diesel(sql_type = BigInt)]
    before: i64,
}

#[derive(QueryableByName)]
struct ChallengeRow {
    #[diesel(sql_type = Bytea)]
    token_hash: Vec<u8>,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Bytea)]
    client: Vec<u8>,
    #[diesel(sql_type = BigInt)]
    epoch: i64,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
}

fn stored(message: &str) -> TotpStoreError {
    TotpStoreError::Other(message.to_owned().into())
}

/// Replaces the user's recovery codes, inside a transaction that holds the secret's row.
async fn put_codes(conn: &mut AsyncPgConnection, id: Uuid, codes: Vec<Vec<u8>>) -> QueryResult<()> {
    diesel::sql_query("DELETE FROM totp_recovery_codes WHERE user_id = $1")
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await?;
    diesel::sql_query(
        "INSERT INTO totp_recovery_codes (user_id, code_hash)
         SELECT $1, h FROM unnest($2::bytea[]) AS h",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Array<Bytea>, _>(codes)
    .execute(conn)
    .await?;
    Ok(())
}

impl PgTotpStore {
    /// Runs `work` in one transaction under one `query_timeout`.
    async fn transact<'a, T, F>(&self, work: F) -> Result<T, TotpStoreError>
    where
        T: Send + 'a,
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> ScopedBoxFuture<'a, 'r, QueryResult<T>>
            + Send
            + 'a,
    {
        let mut conn = self.repo.checkout().await.map_err(totp_error)?;
        let work =
            conn.transaction(move |conn| async move { work(&mut *conn).await }.scope_boxed());
        let outcome = tokio::time::timeout(self.repo.query_timeout(), work).await;
        self.repo.settle(conn, outcome).map_err(totp_error)
    }

    async fn execute<Q>(&self, query: Q) -> Result<usize, TotpStoreError>
    where
        Q: diesel_async::methods::ExecuteDsl<diesel_async::AsyncPgConnection> + Send,
    {
        self.repo.execute_bounded(query).await.map_err(totp_error)
    }

    async fn load<'q, Q, R>(&self, query: Q) -> Result<Vec<R>, TotpStoreError>
    where
        Q: diesel_async::methods::LoadQuery<'q, diesel_async::AsyncPgConnection, R> + Send + 'q,
        R: Send,
    {
        self.repo.load_bounded(query).await.map_err(totp_error)
    }
}

#[async_trait::async_trait]
impl TotpStore for PgTotpStore {
    #[tracing::instrument(name = "pg.totp.get", skip_all)]
    async fn get(&self, user: UserId) -> Result<Option<StoredTotp>, TotpStoreError> {
        let query = diesel::sql_query(
            "SELECT s.sealed_secret, s.enabled_at, s.last_step,
                    (SELECT count(*) FROM totp_recovery_codes r WHERE r.user_id = s.user_id)
                        AS codes_left
             FROM totp_secrets s WHERE s.user_id = $1",
        )
        .bind::<SqlUuid, _>(user.as_uuid());
        let rows: Vec<SecretRow> = self.load(query).await?;
        Ok(rows.into_iter().next().map(|row| StoredTotp {
            sealed_secret: row.sealed_secret,
            enabled_at: row.enabled_at,
            last_step: row.last_step.and_then(|s| u64::try_from(s).ok()),
            recovery_codes_left: u32::try_from(row.codes_left).unwrap_or(0),
        }))
    }

    #[tracing::instrument(name = "pg.totp.put_pending", skip_all)]
    async fn put_pending(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError> {
        let query = diesel::sql_query(
            "INSERT INTO totp_secrets (user_id, sealed_secret, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE
                 SET sealed_secret = EXCLUDED.sealed_secret, created_at = EXCLUDED.created_at,
                     last_step = NULL
                 WHERE totp_secrets.enabled_at IS NULL",
        )
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Bytea, _>(sealed_secret)
        .bind::<Timestamptz, _>(at);
        Ok(self.execute(query).await? == 1)
    }

    #[tracing::instrument(name = "pg.totp.enable", skip_all)]
    async fn enable(
        &self,
        user: UserId,
        step: u64,
        codes: &[RecoveryCodeHash],
        at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError> {
        let (id, codes) = (user.as_uuid(), hashes(codes));
        self.transact(move |conn| {
            async move {
                // The UPDATE locks the row and re-checks `enabled_at` after a parallel one.
                let turned_on = diesel::sql_query(
                    "UPDATE totp_secrets SET enabled_at = $3, last_step = $2
                     WHERE user_id = $1 AND enabled_at IS NULL",
                )
                .bind::<SqlUuid, _>(id)
                .bind::<BigInt, _>(step_i64(step))
                .bind::<Timestamptz, _>(at)
                .execute(conn)
                .await?;
                if turned_on != 1 {
                    return Ok(false);
                }
                put_codes(conn, id, codes).await?;
                Ok(true)
            }
            .scope_boxed()
        })
        .await
    }

    #[tracing::instrument(name = "pg.totp.accept_step", skip_all)]
    async fn accept_step(&self, user: UserId, step: u64) -> Result<bool, TotpStoreError> {
        let query = diesel::sql_query(
            "UPDATE totp_secrets SET last_step = $2
             WHERE user_id = $1 AND enabled_at IS NOT NULL
               AND (last_step IS NULL OR last_step < $2)",
        )
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<BigInt, _>(step_i64(step));
        Ok(self.execute(query).await? == 1)
    }

    #[tracing::instrument(name = "pg.totp.use_recovery_code", skip_all)]
    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCodeHash,
    ) -> Result<Option<u32>, TotpStoreError> {
        // `before` is counted on the statement's snapshot, before the delete.
        let query = diesel::sql_query(
            "WITH used AS (
                 DELETE FROM totp_recovery_codes r USING totp_secrets s
                 WHERE r.user_id = $1 AND r.code_hash = $2
                   AND s.user_id = r.user_id AND s.enabled_at IS NOT NULL
                 RETURNING r.user_id
             )
             SELECT (SELECT count(*) FROM used) AS used,
                    (SELECT count(*) FROM totp_recovery_codes WHERE user_id = $1) AS before",
        )
        .bind::<SqlUuid, _>(user.as_uuid())
        .bind::<Bytea, _>(code.0.to_vec());
        let rows: Vec<UsedRow> = self.load(query).await?;
        Ok(rows
            .into_iter()
            .next()
            .filter(|r| r.used == 1)
            .map(|r| u32::try_from((r.before - 1).max(0)).unwrap_or(0)))
    }

    #[tracing::instrument(name = "pg.totp.replace_recovery_codes", skip_all)]
    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[RecoveryCodeHash],
    ) -> Result<bool, TotpStoreError> {
        let (id, codes) = (user.as_uuid(), hashes(codes));
        self.transact(move |conn| {
            async move {
                // Locks the secret's row: parallel replaces take turns, and each one's DELETE
                // (a statement of its own, so a snapshot of its own) sees the codes the one
                // before it inserted. In one statement they would both survive.
                let on = diesel::sql_query(
                    "SELECT user_id FROM totp_secrets
                     WHERE user_id = $1 AND enabled_at IS NOT NULL FOR UPDATE",
                )
                .bind::<SqlUuid, _>(id)
                .execute(conn)
                .await?;
                if on != 1 {
                    return Ok(false);
                }
                put_codes(conn, id, codes).await?;
                Ok(true)
            }
            .scope_boxed()
        })
        .await
    }

    #[tracing::instrument(name = "pg.totp.disable", skip_all)]
    async fn disable(&self, user: UserId) -> Result<bool, TotpStoreError> {
        let query = diesel::sql_query(
            "WITH challenges AS (DELETE FROM mfa_challenges WHERE user_id = $1)
             DELETE FROM totp_secrets WHERE user_id = $1",
        )
        .bind::<SqlUuid, _>(user.as_uuid());
        Ok(self.execute(query).await? == 1)
    }

    #[tracing::instrument(name = "pg.totp.put_challenge", skip_all)]
    async fn put_challenge(&self, challenge: &MfaChallenge) -> Result<(), TotpStoreError> {
        // The user's expired challenges go on the way: each user's rows stay few.
        let query = diesel::sql_query(
            "WITH expired AS (
                 DELETE FROM mfa_challenges WHERE user_id = $2 AND expires_at <= now()
             )
             INSERT INTO mfa_challenges (token_hash, user_id, client, epoch, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind::<Bytea, _>(challenge.token_hash.0.to_vec())
        .bind::<SqlUuid, _>(challenge.user_id.as_uuid())
        .bind::<Bytea, _>(challenge.client.0.to_vec())
        .bind::<BigInt, _>(i64::try_from(challenge.epoch).unwrap_or(i64::MAX))
        .bind::<Timestamptz, _>(challenge.expires_at);
        self.execute(query).await.map(|_| ())
    }

    #[tracing::instrument(name = "pg.totp.get_challenge", skip_all)]
    async fn get_challenge(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<MfaChallenge>, TotpStoreError> {
        let query = diesel::sql_query(
            "SELECT token_hash, user_id, client, epoch, expires_at
             FROM mfa_challenges WHERE token_hash = $1",
        )
        .bind::<Bytea, _>(token_hash.0.to_vec());
        let rows: Vec<ChallengeRow> = self.load(query).await?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let token_hash: [u8; 32] = row
            .token_hash
            .try_into()
            .map_err(|_| stored("a stored challenge hash is not 32 bytes"))?;
        let client: [u8; 32] = row
            .client
            .try_into()
            .map_err(|_| stored("a stored client binding is not 32 bytes"))?;
        Ok(Some(MfaChallenge {
            token_hash: TokenHash(token_hash),
            user_id: UserId::from_uuid(row.user_id),
            client: ClientBinding(client),
            epoch: u64::try_from(row.epoch).unwrap_or(0),
            expires_at: row.expires_at,
        }))
    }

    #[tracing::instrument(name = "pg.totp.take_challenge", skip_all)]
    async fn take_challenge(&self, token_hash: &TokenHash) -> Result<bool, TotpStoreError> {
        let query = diesel::sql_query("DELETE FROM mfa_challenges WHERE token_hash = $1")
            .bind::<Bytea, _>(token_hash.0.to_vec());
        Ok(self.execute(query).await? == 1)
    }
}
