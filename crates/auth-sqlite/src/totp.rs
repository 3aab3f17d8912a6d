//! [`SqliteTotpStore`]: the [`TotpStore`] port on SQLite.

use std::fmt;

use auth_core::{
    ClientBinding, DateTime, MfaChallenge, RecoveryCodeHash, StoredTotp, TokenHash, TotpStore,
    TotpStoreError, UserId, Utc,
};
use diesel::prelude::*;

use crate::database::Database;
use crate::errors::Failure;
use crate::schema::{mfa_challenges, totp_recovery_codes, totp_secrets};

/// [`TotpStore`] backed by the `totp_secrets`, `totp_recovery_codes` and `mfa_challenges`
/// tables of a [`SqliteUserRepository`](crate::SqliteUserRepository)'s database, made by
/// [`SqliteUserRepository::totp`](crate::SqliteUserRepository::totp); rows go with their
/// user (foreign keys, `ON DELETE CASCADE`).
///
/// Every write runs in one `BEGIN IMMEDIATE` transaction, so each compare-and-set (the last
/// accepted step, a recovery code, a challenge) has exactly one winner among concurrent
/// callers, in this process or another on the same file.
#[derive(Clone)]
pub struct SqliteTotpStore {
    db: Database,
}

impl SqliteTotpStore {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl fmt::Debug for SqliteTotpStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTotpStore")
            .field("db", &self.db)
            .finish()
    }
}

fn id_text(id: UserId) -> String {
    id.as_uuid().hyphenated().to_string()
}

fn step_i64(step: u64) -> i64 {
    i64::try_from(step).unwrap_or(i64::MAX)
}

fn err(f: Failure) -> TotpStoreError {
    match f {
        Failure::Unavailable(s) => TotpStoreError::Unavailable(s),
        Failure::Other(s) => TotpStoreError::Other(s),
    }
}

fn stored(message: &str) -> TotpStoreError {
    TotpStoreError::Other(message.to_owned().into())
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = totp_secrets, check_for_backend(diesel::sqlite::Sqlite))]
struct SecretRow {
    sealed_secret: Vec<u8>,
    enabled_at: Option<DateTime<Utc>>,
    last_step: Option<i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = mfa_challenges, check_for_backend(diesel::sqlite::Sqlite))]
struct ChallengeRow {
    token_hash: Vec<u8>,
    user_id: String,
    client: Vec<u8>,
    epoch: i64,
    expires_at: DateTime<Utc>,
}

impl ChallengeRow {
    fn into_challenge(self) -> Result<MfaChallenge, TotpStoreError> {
        let token_hash: [u8; 32] = self
            .token_hash
            .try_into()
            .map_err(|_| stored("a stored challenge hash is not 32 bytes"))?;
        let client: [u8; 32] = self
            .client
            .try_into()
            .map_err(|_| stored("a stored client binding is not 32 bytes"))?;
        let user_id = UserId::parse(&self.user_id)
            .ok_or_else(|| stored("a stored challenge's user id is not a UUID"))?;
        Ok(MfaChallenge {
            token_hash: TokenHash(token_hash),
            user_id,
            client: ClientBinding(client),
            epoch: u64::try_from(self.epoch).unwrap_or(0),
            expires_at: self.expires_at,
        })
    }
}

#[async_trait::async_trait]
impl TotpStore for SqliteTotpStore {
    async fn get(&self, user: UserId) -> Result<Option<StoredTotp>, TotpStoreError> {
        let id = id_text(user);
        let found = self
            .db
            .read(move |conn| {
                let row = totp_secrets::table
                    .find(&id)
                    .select(SecretRow::as_select())
                    .first(conn)
                    .optional()?;
                let Some(row) = row else { return Ok(None) };
                let left: i64 = totp_recovery_codes::table
                    .filter(totp_recovery_codes::user_id.eq(&id))
                    .count()
                    .get_result(conn)?;
                Ok(Some((row, left)))
            })
            .await
            .map_err(err)?;
        Ok(found.map(|(row, left)| StoredTotp {
            sealed_secret: row.sealed_secret,
            enabled_at: row.enabled_at,
            last_step: row.last_step.and_then(|s| u64::try_from(s).ok()),
            recovery_codes_left: u32::try_from(left).unwrap_or(0),
        }))
    }

    async fn put_pending(
        &self,
        user: UserId,
        sealed_secret: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError> {
        let (id, sealed) = (id_text(user), sealed_secret.to_vec());
        self.db
            .write(move |conn| {
                let enabled = totp_secrets::table
                    .find(&id)
                    .select(totp_secrets::enabled_at)
                    .first::<Option<DateTime<Utc>>>(conn)
                    .optional()?;
                if matches!(enabled, Some(Some(_))) {
                    return Ok(false);
                }
                diesel::delete(totp_secrets::table.find(&id)).execute(conn)?;
                diesel::insert_into(totp_secrets::table)
                    .values((
                        totp_secrets::user_id.eq(&id),
                        totp_secrets::sealed_secret.eq(&sealed),
                        totp_secrets::created_at.eq(at),
                    ))
                    .execute(conn)?;
                Ok(true)
            })
            .await
            .map_err(err)
    }

    async fn enable(
        &self,
        user: UserId,
        step: u64,
        codes: &[RecoveryCodeHash],
        at: DateTime<Utc>,
    ) -> Result<bool, TotpStoreError> {
        let (id, codes) = (id_text(user), codes.to_vec());
        self.db
            .write(move |conn| {
                let n = diesel::update(
                    totp_secrets::table
                        .find(&id)
                        .filter(totp_secrets::enabled_at.is_null()),
                )
                .set((
                    totp_secrets::enabled_at.eq(Some(at)),
                    totp_secrets::last_step.eq(Some(step_i64(step))),
                ))
                .execute(conn)?;
                if n == 0 {
                    return Ok(false);
                }
                replace_codes(conn, &id, &codes)?;
                Ok(true)
            })
            .await
            .map_err(err)
    }

    async fn accept_step(&self, user: UserId, step: u64) -> Result<bool, TotpStoreError> {
        let id = id_text(user);
        let step = step_i64(step);
        let n = self
            .db
            .write(move |conn| {
                diesel::update(
                    totp_secrets::table
                        .find(&id)
                        .filter(totp_secrets::enabled_at.is_not_null())
                        .filter(
                            totp_secrets::last_step
                                .is_null()
                                .or(totp_secrets::last_step.lt(step)),
                        ),
                )
                .set(totp_secrets::last_step.eq(Some(step)))
                .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(n == 1)
    }

    async fn use_recovery_code(
        &self,
        user: UserId,
        code: &RecoveryCodeHash,
    ) -> Result<Option<u32>, TotpStoreError> {
        let (id, hash) = (id_text(user), code.0.to_vec());
        self.db
            .write(move |conn| {
                let enabled = totp_secrets::table
                    .find(&id)
                    .select(totp_secrets::enabled_at)
                    .first::<Option<DateTime<Utc>>>(conn)
                    .optional()?;
                if !matches!(enabled, Some(Some(_))) {
                    return Ok(None);
                }
                let n = diesel::delete(
                    totp_recovery_codes::table
                        .filter(totp_recovery_codes::user_id.eq(&id))
                        .filter(totp_recovery_codes::code_hash.eq(&hash)),
                )
                .execute(conn)?;
                if n == 0 {
                    return Ok(None);
                }
                let left: i64 = totp_recovery_codes::table
                    .filter(totp_recovery_codes::user_id.eq(&id))
                    .count()
                    .get_result(conn)?;
                Ok(Some(u32::try_from(left).unwrap_or(0)))
            })
            .await
            .map_err(err)
    }

    async fn replace_recovery_codes(
        &self,
        user: UserId,
        codes: &[RecoveryCodeHash],
    ) -> Result<bool, TotpStoreError> {
        let (id, codes) = (id_text(user), codes.to_vec());
        self.db
            .write(move |conn| {
                let enabled = totp_secrets::table
                    .find(&id)
                    .select(totp_secrets::enabled_at)
                    .first::<Option<DateTime<Utc>>>(conn)
                    .optional()?;
                if !matches!(enabled, Some(Some(_))) {
                    return Ok(false);
                }
                replace_codes(conn, &id, &codes)?;
                Ok(true)
            })
            .await
            .map_err(err)
    }

    async fn disable(&self, user: UserId) -> Result<bool, TotpStoreError> {
        let id = id_text(user);
        self.db
            .write(move |conn| {
                diesel::delete(mfa_challenges::table.filter(mfa_challenges::user_id.eq(&id)))
                    .execute(conn)?;
                diesel::delete(
                    totp_recovery_codes::table.filter(totp_recovery_codes::user_id.eq(&id)),
                )
                .execute(conn)?;
                let n = diesel::delete(totp_secrets::table.find(&id)).execute(conn)?;
                Ok(n == 1)
            })
            .await
            .map_err(err)
    }

    async fn put_challenge(&self, challenge: &MfaChallenge) -> Result<(), TotpStoreError> {
        let c = challenge.clone();
        self.db
            .write(move |conn| {
                let id = id_text(c.user_id);
                // The user's expired challenges go on the way: each user's rows stay few.
                diesel::delete(
                    mfa_challenges::table
                        .filter(mfa_challenges::user_id.eq(&id))
                        .filter(mfa_challenges::expires_at.le(Utc::now())),
                )
                .execute(conn)?;
                diesel::insert_into(mfa_challenges::table)
                    .values((
                        mfa_challenges::token_hash.eq(c.token_hash.0.to_vec()),
                        mfa_challenges::user_id.eq(&id),
                        mfa_challenges::client.eq(c.client.0.to_vec()),
                        mfa_challenges::epoch.eq(i64::try_from(c.epoch).unwrap_or(i64::MAX)),
                        mfa_challenges::expires_at.eq(c.expires_at),
                    ))
                    .execute(conn)?;
                Ok(())
            })
            .await
            .map_err(err)
    }

    async fn get_challenge(
        &self,
        token_hash: &TokenHash,
    ) -> Result<Option<MfaChallenge>, TotpStoreError> {
        let hash = token_hash.0.to_vec();
        let row = self
            .db
            .read(move |conn| {
                mfa_challenges::table
                    .find(hash)
                    .select(ChallengeRow::as_select())
                    .first(conn)
                    .optional()
            })
            .await
            .map_err(err)?;
        row.map(ChallengeRow::into_challenge).transpose()
    }

    async fn take_challenge(&self, token_hash: &TokenHash) -> Result<bool, TotpStoreError> {
        let hash = token_hash.0.to_vec();
        let n = self
            .db
            .write(move |conn| diesel::delete(mfa_challenges::table.find(hash)).execute(conn))
            .await
            .map_err(err)?;
        Ok(n == 1)
    }
}

fn replace_codes(
    conn: &mut SqliteConnection,
    id: &str,
    codes: &[RecoveryCodeHash],
) -> QueryResult<()> {
    diesel::delete(totp_recovery_codes::table.filter(totp_recovery_codes::user_id.eq(id)))
        .execute(conn)?;
    let rows: Vec<_> = codes
        .iter()
        .map(|c| {
            (
                totp_recovery_codes::user_id.eq(id),
                totp_recovery_codes::code_hash.eq(c.0.to_vec()),
            )
        })
        .collect();
    diesel::insert_into(totp_recovery_codes::table)
        .values(rows)
        .execute(conn)?;
    Ok(())
}
