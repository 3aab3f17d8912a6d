//! [`SqlitePasskeyStore`]: the [`PasskeyStore`] port on SQLite.

use std::fmt;

use auth_core::{
    DateTime, PasskeyId, PasskeyName, PasskeyStore, PasskeyStoreError, StoredPasskey, UserId, Utc,
};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use uuid::Uuid;

use crate::database::Database;
use crate::errors::Failure;
use crate::schema::passkeys;

/// [`PasskeyStore`] backed by the `passkeys` table of a
/// [`SqliteUserRepository`](crate::SqliteUserRepository)'s database, made by
/// [`SqliteUserRepository::passkeys`](crate::SqliteUserRepository::passkeys); rows go with
/// their user (foreign key, `ON DELETE CASCADE`). The credential id is unique; the counter's
/// compare-and-set is one `UPDATE` in a `BEGIN IMMEDIATE` transaction.
#[derive(Clone)]
pub struct SqlitePasskeyStore {
    db: Database,
}

impl SqlitePasskeyStore {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl fmt::Debug for SqlitePasskeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlitePasskeyStore")
            .field("db", &self.db)
            .finish()
    }
}

fn err(f: Failure) -> PasskeyStoreError {
    match f {
        Failure::Unavailable(s) => PasskeyStoreError::Unavailable(s),
        Failure::Other(s) => PasskeyStoreError::Other(s),
    }
}

fn stored(message: &str) -> PasskeyStoreError {
    PasskeyStoreError::Other(message.to_owned().into())
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys, check_for_backend(diesel::sqlite::Sqlite))]
struct Row {
    id: String,
    user_id: String,
    credential_id: Vec<u8>,
    credential: Vec<u8>,
    sign_count: i64,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl Row {
    fn of(p: &StoredPasskey) -> Self {
        Self {
            id: p.id.as_uuid().hyphenated().to_string(),
            user_id: p.user_id.as_uuid().hyphenated().to_string(),
            credential_id: p.credential_id.clone(),
            credential: p.credential.clone(),
            sign_count: i64::from(p.sign_count),
            name: p.name.as_str().to_owned(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }

    fn into_passkey(self) -> Result<StoredPasskey, PasskeyStoreError> {
        Ok(StoredPasskey {
            id: PasskeyId::parse(&self.id).ok_or_else(|| stored("a passkey id is not a UUID"))?,
            user_id: UserId::parse(&self.user_id)
                .ok_or_else(|| stored("a passkey's user id is not a UUID"))?,
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

fn text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

#[async_trait::async_trait]
impl PasskeyStore for SqlitePasskeyStore {
    async fn insert(&self, passkey: &StoredPasskey) -> Result<(), PasskeyStoreError> {
        let row = Row::of(passkey);
        let _turn = self.db.write_turn().await.map_err(err)?;
        let mut conn = self.db.checkout().await.map_err(err)?;
        let outcome = conn
            .spawn_blocking(move |conn| {
                conn.immediate_transaction(|conn| {
                    diesel::insert_into(passkeys::table)
                        .values(&row)
                        .execute(conn)
                })
            })
            .await;
        match outcome {
            Ok(_) => Ok(()),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(PasskeyStoreError::Duplicate)
            }
            Err(e) => Err(err(crate::errors::failure(e))),
        }
    }

    async fn list(&self, user: UserId) -> Result<Vec<StoredPasskey>, PasskeyStoreError> {
        let user = text(user.as_uuid());
        let rows = self
            .db
            .read(move |conn| {
                passkeys::table
                    .filter(passkeys::user_id.eq(&user))
                    .order((passkeys::created_at.asc(), passkeys::id.asc()))
                    .select(Row::as_select())
                    .load(conn)
            })
            .await
            .map_err(err)?;
        rows.into_iter().map(Row::into_passkey).collect()
    }

    async fn find_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<StoredPasskey>, PasskeyStoreError> {
        let credential_id = credential_id.to_vec();
        let row = self
            .db
            .read(move |conn| {
                passkeys::table
                    .filter(passkeys::credential_id.eq(&credential_id))
                    .select(Row::as_select())
                    .first(conn)
                    .optional()
            })
            .await
            .map_err(err)?;
        row.map(Row::into_passkey).transpose()
    }

    async fn rename(
        &self,
        user: UserId,
        id: PasskeyId,
        name: &PasskeyName,
    ) -> Result<bool, PasskeyStoreError> {
        let (user, id, name) = (
            text(user.as_uuid()),
            text(id.as_uuid()),
            name.as_str().to_owned(),
        );
        let n = self
            .db
            .write(move |conn| {
                diesel::update(
                    passkeys::table
                        .find(&id)
                        .filter(passkeys::user_id.eq(&user)),
                )
                .set(passkeys::name.eq(&name))
                .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(n == 1)
    }

    async fn delete(&self, user: UserId, id: PasskeyId) -> Result<bool, PasskeyStoreError> {
        let (user, id) = (text(user.as_uuid()), text(id.as_uuid()));
        let n = self
            .db
            .write(move |conn| {
                diesel::delete(
                    passkeys::table
                        .find(&id)
                        .filter(passkeys::user_id.eq(&user)),
                )
                .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(n == 1)
    }

    async fn record_use(
        &self,
        id: PasskeyId,
        expected_count: u32,
        new_count: u32,
        credential: &[u8],
        at: DateTime<Utc>,
    ) -> Result<bool, PasskeyStoreError> {
        let (id, credential) = (text(id.as_uuid()), credential.to_vec());
        let n = self
            .db
            .write(move |conn| {
                diesel::update(
                    passkeys::table
                        .find(&id)
                        .filter(passkeys::sign_count.eq(i64::from(expected_count))),
                )
                .set((
                    passkeys::sign_count.eq(i64::from(new_count)),
                    passkeys::credential.eq(&credential),
                    passkeys::last_used_at.eq(Some(at)),
                ))
                .execute(conn)
            })
            .await
            .map_err(err)?;
        Ok(n == 1)
    }
}
