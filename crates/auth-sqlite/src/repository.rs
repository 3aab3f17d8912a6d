//! [`SqliteUserRepository`]: the [`UserRepository`] port on SQLite.

use std::fmt;

use auth_core::{
    AccountState, AccountStatus, AccountSummary, EmailAddress, NewUser, PasswordHash, QueuedMail,
    Role, User, UserCredentials, UserId, UserQuery, UserRepoError, UserRepository,
};
use chrono::{DateTime, Utc};
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, TimestamptzSqlite};
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::connection::SqlitePool;
use crate::database::Database;
use crate::errors;
use crate::outbox::{NewMailRow, SqliteOutbox};
use crate::schema::users;
use crate::settings::{SqliteError, SqliteSettings};
use crate::setup;

define_sql_function!(
    fn coalesce(
        x: Nullable<TimestamptzSqlite>,
        y: Nullable<TimestamptzSqlite>,
    ) -> Nullable<TimestamptzSqlite>
);

/// [`UserRepository`] backed by the `users` table of a SQLite database.
///
/// Cheap to clone (clones share the pool). Reads run in parallel on the pooled connections
/// (WAL mode); writes take turns on an in-process queue, so concurrent requests wait for each
/// other in order instead of failing with "database is locked". SQLite's own `busy_timeout`
/// still covers locks held by another process on the same file. Uniqueness of addresses is
/// enforced by the unique index on `email COLLATE NOCASE`, and every operation is a single
/// statement, so there is no check-then-write race.
///
/// The mail outbox of the same database is [`Self::outbox`].
///
/// **One process writes**: several processes may share the file, but an embedded-profile
/// deployment runs one instance.
#[derive(Clone)]
pub struct SqliteUserRepository {
    db: Database,
}

impl SqliteUserRepository {
    /// Opens (creating when missing, with its parent directory) the database of `settings`,
    /// applies the pending migrations and returns the repository.
    pub async fn open(settings: &SqliteSettings) -> Result<Self, SqliteError> {
        let repo = Self {
            db: Database::open(settings).await?,
        };
        repo.run_migrations().await?;
        Ok(repo)
    }

    /// Applies the pending embedded migrations ([`crate::MIGRATIONS`]) and returns the versions
    /// applied. [`Self::open`] already did; this is for a database migrated while open.
    pub async fn run_migrations(&self) -> Result<Vec<String>, SqliteError> {
        let _turn = self
            .db
            .write_turn()
            .await
            .map_err(|e| SqliteError::Unavailable(e.into_source()))?;
        let mut conn = self
            .db
            .checkout()
            .await
            .map_err(|e| SqliteError::Unavailable(e.into_source()))?;
        setup::apply(&mut conn).await
    }

    /// The mail outbox ([`auth_core::OutboxStore`]) in this repository's database, on the same
    /// pool: its writes take turns with the repository's, an in-memory database is shared
    /// between the two, and [`Self::close`] closes both.
    pub fn outbox(&self) -> SqliteOutbox {
        SqliteOutbox::new(self.db.clone())
    }

    /// The second-factor store ([`auth_core::TotpStore`]) in this repository's database, on
    /// the same pool.
    pub fn totp(&self) -> crate::SqliteTotpStore {
        crate::SqliteTotpStore::new(self.db.clone())
    }

    /// The passkey store ([`auth_core::PasskeyStore`]) in this repository's database, on the
    /// same pool.
    pub fn passkeys(&self) -> crate::SqlitePasskeyStore {
        crate::SqlitePasskeyStore::new(self.db.clone())
    }

    /// The security event store ([`auth_core::SecurityEvents`]) in this repository's
    /// database, on the same pool.
    pub fn security_events(&self) -> crate::SqliteSecurityEvents {
        crate::SqliteSecurityEvents::new(self.db.clone())
    }

    /// Webhook endpoints and their delivery queue ([`auth_core::WebhookStore`]) in this
    /// repository's database, on the same pool.
    pub fn webhooks(&self) -> crate::SqliteWebhooks {
        crate::SqliteWebhooks::new(self.db.clone())
    }

    /// The underlying pool (its `status()` is useful for metrics).
    pub fn pool(&self) -> &SqlitePool {
        self.db.pool()
    }

    /// Closes the pool: idle connections are closed and later operations fail with
    /// `Unavailable`. For graceful shutdown; affects every clone, and the
    /// [outboxes](Self::outbox) made from them.
    pub fn close(&self) {
        self.db.pool().close();
    }
}

impl fmt::Debug for SqliteUserRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteUserRepository")
            .field("db", &self.db)
            .finish()
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    verified_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    language: Option<String>,
    role: String,
    disabled_at: Option<DateTime<Utc>>,
}

impl UserRow {
    fn into_credentials(mut self) -> Result<UserCredentials, UserRepoError> {
        let password_hash = PasswordHash::new(std::mem::take(&mut self.password_hash));
        let language = self.language.take();
        let status = self.status()?;
        let user = self.into_user()?;
        Ok(UserCredentials {
            user,
            password_hash,
            language,
            status,
        })
    }

    fn status(&self) -> Result<AccountStatus, UserRepoError> {
        let role = Role::parse(&self.role)
            .ok_or_else(|| UserRepoError::Other("a stored role is unknown".into()))?;
        Ok(AccountStatus {
            role,
            disabled_at: self.disabled_at,
        })
    }

    fn into_summary(self) -> Result<AccountSummary, UserRepoError> {
        let status = self.status()?;
        Ok(AccountSummary {
            user: self.into_user()?,
            status,
        })
    }

    fn into_user(self) -> Result<User, UserRepoError> {
        // Only rows written outside this adapter can fail here; the address itself is not put
        // in the error, it is personal data.
        let id = Uuid::parse_str(&self.id)
            .map_err(|_| UserRepoError::Other("a stored user id is not a UUID".into()))?;
        let email = EmailAddress::parse(&self.email).map_err(|e| {
            UserRepoError::Other(format!("user {id} has an invalid stored address: {e}").into())
        })?;
        Ok(User {
            id: UserId::from_uuid(id),
            email,
            verified_at: self.verified_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: String,
    email: &'a str,
    password_hash: &'a str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    language: Option<&'a str>,
}

fn id_text(id: UserId) -> String {
    id.as_uuid().hyphenated().to_string()
}

impl<'a> From<&'a NewUser> for NewUserRow<'a> {
    fn from(new_user: &'a NewUser) -> Self {
        Self {
            id: id_text(new_user.id),
            email: new_user.email.as_str(),
            password_hash: new_user.password_hash.as_str(),
            created_at: new_user.created_at,
            updated_at: new_user.created_at,
            language: new_user.language.as_deref(),
        }
    }
}

/// `%`, `_` and `\\` as literal characters of a `LIKE` pattern (with `ESCAPE '\\'`).
fn escape_like(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One account's row changed by an UPDATE or DELETE, and the mail that goes with it.
/// What a move to another address found, inside its transaction.
enum Move {
    Moved(UserRow),
    NotFound,
    Taken,
}

enum AccountChange {
    SetRole {
        id: String,
        role: Role,
    },
    /// Disables (keeping an earlier time) or enables.
    SetDisabled {
        id: String,
        disabled_at: Option<DateTime<Utc>>,
    },
    SetPassword {
        id: String,
        /// The address the account must still have (a compare-and-set); `None`: any.
        email: Option<String>,
        hash: String,
        at: DateTime<Utc>,
        only_unverified: bool,
    },
    Delete {
        id: String,
    },
}

impl AccountChange {
    /// Runs the change; how many rows it matched (0 or 1).
    fn run(&self, conn: &mut SqliteConnection) -> QueryResult<usize> {
        match self {
            AccountChange::SetPassword {
                id,
                email,
                hash,
                at,
                only_unverified,
            } => {
                let set = (users::password_hash.eq(hash), users::updated_at.eq(at));
                let account = users::table.filter(users::id.eq(id));
                // The address is compared as stored (the exact string the caller read).
                match (only_unverified, email) {
                    (false, None) => {
                        diesel::RunQueryDsl::execute(diesel::update(account).set(set), conn)
                    }
                    (true, None) => diesel::RunQueryDsl::execute(
                        diesel::update(account.filter(users::verified_at.is_null())).set(set),
                        conn,
                    ),
                    (false, Some(email)) => diesel::RunQueryDsl::execute(
                        diesel::update(account.filter(users::email.eq(email))).set(set),
                        conn,
                    ),
                    (true, Some(email)) => diesel::RunQueryDsl::execute(
                        diesel::update(
                            account
                                .filter(users::verified_at.is_null())
                                .filter(users::email.eq(email)),
                        )
                        .set(set),
                        conn,
                    ),
                }
            }
            AccountChange::Delete { id } => {
                diesel::RunQueryDsl::execute(diesel::delete(users::table.find(id)), conn)
            }
            AccountChange::SetRole { id, role } => diesel::RunQueryDsl::execute(
                diesel::update(users::table.find(id)).set(users::role.eq(role.as_str())),
                conn,
            ),
            AccountChange::SetDisabled {
                id,
                disabled_at: Some(at),
            } => diesel::RunQueryDsl::execute(
                diesel::update(users::table.find(id))
                    .set(users::disabled_at.eq(coalesce(users::disabled_at, Some(*at)))),
                conn,
            ),
            AccountChange::SetDisabled {
                id,
                disabled_at: None,
            } => diesel::RunQueryDsl::execute(
                diesel::update(users::table.find(id))
                    .set(users::disabled_at.eq(None::<DateTime<Utc>>)),
                conn,
            ),
        }
    }
}

impl SqliteUserRepository {
    /// Sets the password hash (of an unverified account only, when `only_unverified`) and
    /// queues `mail` with it; `NotFound`, and no mail, when no account matched.
    async fn password_with_mail(
        &self,
        id: UserId,
        email: Option<&EmailAddress>,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
        only_unverified: bool,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let change = AccountChange::SetPassword {
            id: id_text(id),
            email: email.map(|e| e.as_str().to_owned()),
            hash: password_hash.as_str().to_owned(),
            at,
            only_unverified,
        };
        match self.change_with_mail(change, mail).await? {
            true => Ok(()),
            false => Err(UserRepoError::NotFound),
        }
    }

    /// Makes `change` alone, in one write transaction; `NotFound` when no account matched.
    async fn change(&self, change: AccountChange) -> Result<(), UserRepoError> {
        let matched = self.db.write(move |conn| Ok(change.run(conn)? > 0)).await?;
        if matched {
            Ok(())
        } else {
            Err(UserRepoError::NotFound)
        }
    }

    /// Makes `change` and, when it matched the account, queues `mail`, in one write
    /// transaction: a mail that cannot be queued undoes the change. Whether it matched.
    async fn change_with_mail(
        &self,
        change: AccountChange,
        mail: &QueuedMail,
    ) -> Result<bool, UserRepoError> {
        let mail = NewMailRow::pending(mail);
        Ok(self
            .db
            .write(move |conn| {
                let matched = change.run(conn)? > 0;
                if matched {
                    mail.enqueue(conn)?;
                }
                Ok(matched)
            })
            .await?)
    }
}

#[async_trait::async_trait]
impl UserRepository for SqliteUserRepository {
    #[tracing::instrument(name = "sqlite.users.create", skip_all, fields(user_id = %new_user.id))]
    async fn create(&self, new_user: &NewUser) -> Result<User, UserRepoError> {
        let row = NewUserRow::from(new_user);
        let _turn = self.db.write_turn().await?;
        let mut conn = self.db.checkout().await?;
        // No read before the write: the unique index decides, so concurrent signups of one
        // address yield one row and `Duplicate` for the others.
        diesel::insert_into(users::table)
            .values(&row)
            .returning(UserRow::as_returning())
            .get_result(&mut conn)
            .await
            .map_err(errors::from_diesel)?
            .into_user()
    }

    #[tracing::instrument(name = "sqlite.users.find_by_email", skip_all)]
    async fn find_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<UserCredentials>, UserRepoError> {
        let mut conn = self.db.checkout().await?;
        // `=` compares with the column's NOCASE collation, like the unique index.
        users::table
            .filter(users::email.eq(email.as_str()))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(errors::from_diesel)?
            .map(UserRow::into_credentials)
            .transpose()
    }

    #[tracing::instrument(name = "sqlite.users.find_by_id", skip_all, fields(user_id = %id))]
    async fn find_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UserRepoError> {
        let mut conn = self.db.checkout().await?;
        users::table
            .find(id_text(id))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(errors::from_diesel)?
            .map(UserRow::into_credentials)
            .transpose()
    }

    #[tracing::instrument(
        name = "sqlite.users.replace_unverified_password",
        skip_all,
        fields(user_id = %id)
    )]
    async fn replace_unverified_password(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError> {
        let _turn = self.db.write_turn().await?;
        let mut conn = self.db.checkout().await?;
        // The state check is part of the UPDATE, so a verification that lands between a read
        // and this write can never be overwritten.
        let updated = diesel::update(
            users::table
                .filter(users::id.eq(id_text(id)))
                .filter(users::verified_at.is_null()),
        )
        .set((
            users::password_hash.eq(password_hash.as_str()),
            users::updated_at.eq(at),
        ))
        .execute(&mut conn)
        .await
        .map_err(errors::from_diesel)?;
        match updated {
            0 => Err(UserRepoError::NotFound),
            _ => Ok(()),
        }
    }

    #[tracing::instrument(name = "sqlite.users.mark_verified", skip_all, fields(user_id = %id))]
    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<User, UserRepoError> {
        let _turn = self.db.write_turn().await?;
        let mut conn = self.db.checkout().await?;
        // One statement that keeps the first verification time; `SET` expressions all see the
        // old row, so `updated_at` only moves when this call is the one that verifies.
        diesel::update(users::table.find(id_text(id)))
            .set((
                users::verified_at.eq(coalesce(users::verified_at, Some(at))),
                users::updated_at.eq(case_when::<_, _, TimestamptzSqlite>(
                    users::verified_at.is_null(),
                    at,
                )
                .otherwise(users::updated_at)),
            ))
            .returning(UserRow::as_returning())
            .get_result(&mut conn)
            .await
            .optional()
            .map_err(errors::from_diesel)?
            .ok_or(UserRepoError::NotFound)?
            .into_user()
    }

    #[tracing::instrument(name = "sqlite.users.set_email", skip_all, fields(user_id = %id))]
    async fn set_email(
        &self,
        id: UserId,
        from: &EmailAddress,
        to: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<User, UserRepoError> {
        let (id, from, to) = (
            id_text(id),
            from.as_str().to_owned(),
            to.as_str().to_owned(),
        );
        let hash = password_hash.as_str().to_owned();
        // One write transaction (writes are serialised): the compare (address, password hash,
        // enabled); a pending (unverified) signup at the new address goes (whoever confirms
        // holds the code from that mailbox), a verified account there refuses the move; then
        // the move.
        let moved = self
            .db
            .write(move |conn| {
                use diesel::RunQueryDsl as Sync;
                let matched = Sync::first::<String>(
                    users::table
                        .find(&id)
                        .filter(users::email.eq(&from))
                        .filter(users::password_hash.eq(&hash))
                        .filter(users::disabled_at.is_null())
                        .select(users::id),
                    conn,
                )
                .optional()?;
                if matched.is_none() {
                    return Ok(Move::NotFound);
                }
                let holder = Sync::first::<(String, Option<DateTime<Utc>>)>(
                    users::table
                        .filter(users::email.eq(&to))
                        .filter(users::id.ne(&id))
                        .select((users::id, users::verified_at)),
                    conn,
                )
                .optional()?;
                match holder {
                    Some((_, Some(_))) => return Ok(Move::Taken),
                    Some((pending, None)) => {
                        Sync::execute(diesel::delete(users::table.find(pending)), conn)?;
                    }
                    None => {}
                }
                Sync::get_result(
                    diesel::update(users::table.find(&id))
                        .set((users::email.eq(&to), users::updated_at.eq(at)))
                        .returning(UserRow::as_returning()),
                    conn,
                )
                .map(Move::Moved)
            })
            .await;
        match moved {
            Ok(Move::Moved(row)) => row.into_user(),
            Ok(Move::NotFound) => Err(UserRepoError::NotFound),
            Ok(Move::Taken) => Err(UserRepoError::Duplicate),
            Err(e) => Err(e.into()),
        }
    }

    #[tracing::instrument(name = "sqlite.users.set_password_hash", skip_all, fields(user_id = %id))]
    async fn set_password_hash(
        &self,
        id: UserId,
        email: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError> {
        let _turn = self.db.write_turn().await?;
        let mut conn = self.db.checkout().await?;
        // One statement: the compare on the address (stored as read) and the write.
        let updated = diesel::update(
            users::table
                .find(id_text(id))
                .filter(users::email.eq(email.as_str())),
        )
        .set((
            users::password_hash.eq(password_hash.as_str()),
            users::updated_at.eq(at),
        ))
        .execute(&mut conn)
        .await
        .map_err(errors::from_diesel)?;
        match updated {
            0 => Err(UserRepoError::NotFound),
            _ => Ok(()),
        }
    }

    #[tracing::instrument(name = "sqlite.users.delete", skip_all, fields(user_id = %id))]
    async fn delete(&self, id: UserId) -> Result<bool, UserRepoError> {
        let _turn = self.db.write_turn().await?;
        let mut conn = self.db.checkout().await?;
        let deleted = diesel::delete(users::table.find(id_text(id)))
            .execute(&mut conn)
            .await
            .map_err(errors::from_diesel)?;
        Ok(deleted > 0)
    }

    #[tracing::instrument(
        name = "sqlite.users.create_with_mail",
        skip_all,
        fields(user_id = %new_user.id)
    )]
    async fn create_with_mail(
        &self,
        new_user: &NewUser,
        mail: &QueuedMail,
    ) -> Result<User, UserRepoError> {
        let new_user = new_user.clone();
        let mail = NewMailRow::pending(mail);
        self.db
            .write(move |conn| {
                let query = diesel::insert_into(users::table)
                    .values(NewUserRow::from(&new_user))
                    .returning(UserRow::as_returning());
                let created: QueryResult<UserRow> = diesel::RunQueryDsl::get_result(query, conn);
                match created {
                    Ok(row) => {
                        mail.enqueue(conn)?;
                        Ok(Ok(row))
                    }
                    // The first statement: nothing written to undo. Told apart below.
                    Err(
                        e @ diesel::result::Error::DatabaseError(
                            diesel::result::DatabaseErrorKind::UniqueViolation,
                            _,
                        ),
                    ) => Ok(Err(e)),
                    Err(e) => Err(e),
                }
            })
            .await?
            .map_err(errors::from_diesel)?
            .into_user()
    }

    #[tracing::instrument(
        name = "sqlite.users.replace_unverified_password_with_mail",
        skip_all,
        fields(user_id = %id)
    )]
    async fn replace_unverified_password_with_mail(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        self.password_with_mail(id, None, password_hash, at, true, mail)
            .await
    }

    #[tracing::instrument(
        name = "sqlite.users.set_password_hash_with_mail",
        skip_all,
        fields(user_id = %id)
    )]
    async fn set_password_hash_with_mail(
        &self,
        id: UserId,
        email: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        self.password_with_mail(id, Some(email), password_hash, at, false, mail)
            .await
    }

    #[tracing::instrument(name = "sqlite.users.delete_with_mail", skip_all, fields(user_id = %id))]
    async fn delete_with_mail(&self, id: UserId, mail: &QueuedMail) -> Result<bool, UserRepoError> {
        self.change_with_mail(AccountChange::Delete { id: id_text(id) }, mail)
            .await
    }

    #[tracing::instrument(name = "sqlite.users.list", skip_all)]
    async fn list(&self, query: &UserQuery) -> Result<Vec<AccountSummary>, UserRepoError> {
        let mut q = users::table.select(UserRow::as_select()).into_boxed();
        if let Some(prefix) = &query.email_prefix {
            // LIKE ignores ASCII case; addresses are stored lower-cased.
            q = q.filter(
                users::email
                    .like(format!("{}%", escape_like(&prefix.to_lowercase())))
                    .escape('\\'),
            );
        }
        if let Some(after) = &query.after {
            // Compared with the column's NOCASE collation, the order below.
            q = q.filter(users::email.gt(after.as_str().to_owned()));
        }
        if let Some(role) = query.role {
            q = q.filter(users::role.eq(role.as_str()));
        }
        q = match query.state {
            None => q,
            Some(AccountState::Disabled) => q.filter(users::disabled_at.is_not_null()),
            Some(AccountState::Active) => q
                .filter(users::disabled_at.is_null())
                .filter(users::verified_at.is_not_null()),
            Some(AccountState::Unverified) => q
                .filter(users::disabled_at.is_null())
                .filter(users::verified_at.is_null()),
        };
        let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
        let mut conn = self.db.checkout().await?;
        q.order(users::email.asc())
            .limit(limit)
            .load::<UserRow>(&mut conn)
            .await
            .map_err(errors::from_diesel)?
            .into_iter()
            .map(UserRow::into_summary)
            .collect()
    }

    #[tracing::instrument(name = "sqlite.users.set_role", skip_all, fields(user_id = %id))]
    async fn set_role(&self, id: UserId, role: Role) -> Result<(), UserRepoError> {
        self.change(AccountChange::SetRole {
            id: id_text(id),
            role,
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.set_disabled", skip_all, fields(user_id = %id))]
    async fn set_disabled(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), UserRepoError> {
        self.change(AccountChange::SetDisabled {
            id: id_text(id),
            disabled_at,
        })
        .await
    }

    #[tracing::instrument(name = "sqlite.users.set_role_with_mail", skip_all, fields(user_id = %id))]
    async fn set_role_with_mail(
        &self,
        id: UserId,
        role: Role,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let change = AccountChange::SetRole {
            id: id_text(id),
            role,
        };
        match self.change_with_mail(change, mail).await? {
            true => Ok(()),
            false => Err(UserRepoError::NotFound),
        }
    }

    #[tracing::instrument(
        name = "sqlite.users.set_disabled_with_mail",
        skip_all,
        fields(user_id = %id)
    )]
    async fn set_disabled_with_mail(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let change = AccountChange::SetDisabled {
            id: id_text(id),
            disabled_at,
        };
        match self.change_with_mail(change, mail).await? {
            true => Ok(()),
            false => Err(UserRepoError::NotFound),
        }
    }

    #[tracing::instrument(name = "sqlite.users.ping", skip_all)]
    async fn ping(&self) -> Result<(), UserRepoError> {
        let mut conn = self.db.checkout().await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(errors::from_diesel)
    }
}
