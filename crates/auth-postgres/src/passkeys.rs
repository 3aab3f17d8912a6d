//! [`PgPasskeyStore`]: the [`PasskeyStore`] port on PostgreSQL.
//!
//! The credential id is unique (a constraint, so of two parallel registrations of one
//! credential one fails); the counter's compare-and-set is one `UPDATE`, which re-checks its
//! condition on the row it locked.

use auth_core::{
    PasskeyId, PasskeyName, PasskeyStore, PasskeyStoreError, StoredPasskey, UserId, UserRepoError,
};
use chrono::{DateTime, Utc};
use diesel::sql_types::{BigInt, Bytea, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel::QueryableByName;
use uuid::Uuid;

use crate::repository::PgUserRepository;

/// [`PasskeyStore`] on the `passkeys` table of the repository's database (rows go with their
/// user), sharing its pool and timeouts.
#[derive(Clone, Debug)]
pub struct PgPasskeyStore {
    repo: PgUserRepository,
}

impl PgUserRepository {
    /// The passkey store in the same database, sharing this repository's pool.
    pub fn passkeys(&self) -> PgPasskeyStore {
        PgPasskeyStore { repo: self.clone() }
    }
}

fn passkey_error(error: UserRepoError) -> PasskeyStoreError {
    match error {
        UserRepoError::Duplicate => PasskeyStoreError::Duplicate,
        UserRepoError::Unavailable(e) => PasskeyStoreError::Unavailable(e),
        other => PasskeyStoreError::Other(Box::new(other)),
    }
}

fn stored(message: &str) -> PasskeyStoreError {
    PasskeyStoreError::Other(message.to_owned().into())
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    user_id: Uuid,
    #[diesel(sql_type = Bytea)]
    credential_id: Vec<u8>,
    #[diesel(sql_type = Bytea)]
    credential: Vec<u8>,
    #[diesel(sql_type = BigInt)]
    sign_count: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    last_used_at: Option<DateTime<Utc>>,
}

impl Row {
    fn into_passkey(self) -> Result<StoredPasskey, PasskeyStoreError> {
        Ok(StoredPasskey {
            id: PasskeyId::from_uuid(self.id),
            user_id: UserId::from_uuid(self.user_id),
            credential_id: self.credential_id,
            credential: self.credential,
            sign_count: u32::try_from(self.sign_count)
                .map_err(|_| stored("a passkey's counter is out of range"))?,
            name: PasskeyName::parse(&self.name)
                .map_err(|_| stored("a stored passkey name does not parse"))?,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        })
    }
}

const COLUMNS: &str =
    "id, user_id, credential_id, credential, sign_count, name, created_at, last_used_at";

impl PgPasskeyStore {
    async fn execute<Q>(&self, query: Q) -> Result<usize, PasskeyStoreError>
    where
        Q: diesel_async::methods::ExecuteDsl<diesel_async::AsyncPgConnection> + Send,
    {
        self.repo
            .execute_bounded(query)
            .await
            .map_err(passkey_error)
    }

    async fn load<'q, Q>(&self, query: Q) -> Result<Vec<StoredPasskey>, PasskeyStoreError>
    where
        Q: diesel_async::methods::LoadQuery<'q, diesel_async::AsyncPgConnection, Row> + Send + 'q,
    {
        let rows = self.repo.load_bounded(query).await.map_err(passkey_error)?;
        rows.into_iter().map(Row::into_passkey).collect()
    }
}

#[async_trait::async_trait]
impl PasskeyStore for PgPasskeyStore {
    #[tracing::instrument(name = "pg.passkeys.insert", skip_all)]
    async fn insert(&self, passkey: &StoredPasskey) -> Result<(), PasskeyStoreError> {
        let query = diesel::sql_query(format!(
            "INSERT INTO passkeys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind::<SqlUuid, _>(passkey.id.as_uuid())
        .bind::<SqlUuid, _>(passkey.user_id.as_uuid())
        .bind::<Bytea, _>(passkey.credential_id.clone())
        .bind::<Bytea, _>(passkey.credential.clone())
        .bind::<BigInt, _>(i64::from(passkey.sign_count))
        .bind::<Text, _>(passkey.name.as_str().to_owned())
        .bind::<Timestamptz, _>(passkey.created_at)
        .bind::<Nullable<Timestamptz>, _>(passkey.last_used_at);
        self.execute(query).await.map(drop)
    }

    #[tracing::instrument(name = "pg.passkeys.list", skip_all)]
    async fn list(&self, user: UserId) -> Result<Vec<StoredPasskey>, PasskeyStoreError> {
        let query = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
        ))
        .bind::<SqlUuid, _>(user.as_uuid());
        self.load(query).await
    }

    #[tracing::instrument(name = "pg.passkeys.find", skip_all)]
    async fn find_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<StoredPasskey>, PasskeyStoreError> {
        let query = diesel::sql_query(format!(
            "SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"
        ))
        .bind::<Bytea, _>(credential_id.to_vec());
        Ok(self.load(query).await?.into_iter().next())
    }

    #[tracing::instrument(name = "pg.passkeys.rename", skip_all)]
    async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<bool, PasskeyStoreError> {
        let query =
            diesel::sql_query("UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2")
                .bind::<SqlUuid, _>(id.as_uuid())
                .bind::<SqlUuid, _>(user.as_uuid())
                .bind::<Text, _>(name.as_str().to_owned());
        Ok(self.execute(query).await? == 1)
    }

    #[tracing::instrument(name = "pg.passkeys.delete", skip_all)]
    async fn delete(&self, user: UserId, id: PasskeyId) -> Result<bool, PasskeyStoreError> {
        let query = diesel::sql_query("DELETE FROM passkeys WHERE id = $1 AND user_id = $2")
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<SqlUuid, _>(user.as_uuid());
        Ok(self.execute(query).await? == 1)
    }

    #[tracing::instrument(name = "pg.passkeys.record_use", skip_all)]
    async fn record_use(
        &self,
        id: PasskeyId,
        expected_count: u32,
        new_count: u32,
        credential: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, PasskeyStoreError> {
        let query = diesel::sql_query(
            "UPDATE passkeys SET sign_count = $3, credential = $4, last_used_at = $5
             WHERE id = $1 AND sign_count = $2",
        )
        .bind::<SqlUuid, _>(id.as_uuid())
        .bind::<BigInt, _>(i64::from(expected_count))
        .bind::<BigInt, _>(i64::from(new_count))
        .bind::<Bytea, _>(credential.to_vec())
        .bind::<Timestamptz, _>(at);
        Ok(self.execute(query).await? == 1)
    }
}
