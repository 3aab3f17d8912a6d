//! [`PgUserRepository`]: the [`UserRepository`] port on PostgreSQL.

use std::fmt;
use std::time::Duration;

use auth_core::{
    AccountState, AccountStatus, AccountSummary, EmailAddress, NewUser, PasswordHash, QueuedMail,
    Role, User, UserCredentials, UserId, UserQuery, UserRepoError, UserRepository,
};
use chrono::{DateTime, Utc};
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz};
use diesel_async::pooled_connection::deadpool::Object;
use diesel_async::scoped_futures::{ScopedBoxFuture, ScopedFutureExt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use tokio::time::error::Elapsed;
use uuid::Uuid;

use std::sync::Arc;

use crate::connection::Connector;
use crate::errors;
use crate::schema::users;
use crate::settings::{PgPool, PostgresError, PostgresSettings};

define_sql_function!(fn lower(x: Text) -> Text);
define_sql_function!(
    fn coalesce(x: Nullable<Timestamptz>, y: Nullable<Timestamptz>) -> Nullable<Timestamptz>
);

type PooledConnection = Object<AsyncPgConnection>;

/// [`UserRepository`] backed by the `users` table, through a connection pool.
///
/// Cheap to clone (clones share the pool). Uniqueness of addresses is enforced by the unique
/// index on `lower(email)`; every operation is a single statement, so there is no
/// check-then-write race. Every operation is bounded in time by the settings'
/// `acquire_timeout` and `query_timeout`, after which it fails with
/// [`UserRepoError::Unavailable`].
#[derive(Clone)]
pub struct PgUserRepository {
    pool: PgPool,
    acquire_timeout: Duration,
    query_timeout: Duration,
    /// Sends cancel requests for statements abandoned at `query_timeout`.
    canceller: Option<Arc<Connector>>,
}

impl PgUserRepository {
    /// A repository with its own pool built from `settings` (see [`PostgresSettings::pool`]).
    ///
    /// Does not contact the server: the pool connects on first use. Fails only on unusable
    /// settings.
    pub fn connect(settings: &PostgresSettings) -> Result<Self, PostgresError> {
        Ok(Self::from_pool(settings.pool()?, settings))
    }

    /// A repository on an existing pool (e.g. one shared with other adapters), with the
    /// timeouts of `settings`.
    pub fn from_pool(pool: PgPool, settings: &PostgresSettings) -> Self {
        Self {
            pool,
            acquire_timeout: settings.acquire_timeout,
            query_timeout: settings.query_timeout,
            canceller: settings.connector().ok().map(Arc::new),
        }
    }

    /// The underlying pool (its `status()` is useful for metrics).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The bound on one statement.
    pub(crate) fn query_timeout(&self) -> Duration {
        self.query_timeout
    }

    /// Closes the pool: idle connections are dropped and later operations fail with
    /// `Unavailable`. For graceful shutdown; affects every clone.
    pub fn close(&self) {
        self.pool.close();
    }

    pub(crate) async fn checkout(&self) -> Result<PooledConnection, UserRepoError> {
        match tokio::time::timeout(self.acquire_timeout, self.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(error)) => Err(errors::from_pool(error)),
            Err(_) => Err(errors::timed_out(
                "getting a connection",
                self.acquire_timeout,
            )),
        }
    }

    /// Runs one statement that changes rows, on a pooled connection under the pool's bounds
    /// (see [`settle`](Self::settle)); how many. The stores beside the user table map the error.
    pub(crate) async fn execute_bounded<Q>(&self, query: Q) -> Result<usize, UserRepoError>
    where
        Q: diesel_async::methods::ExecuteDsl<AsyncPgConnection> + Send,
    {
        let mut conn = self.checkout().await?;
        let outcome = tokio::time::timeout(self.query_timeout, query.execute(&mut conn)).await;
        self.settle(conn, outcome)
    }

    /// Runs one statement that returns rows, as [`execute_bounded`](Self::execute_bounded);
    /// all of them.
    pub(crate) async fn load_bounded<'q, Q, R>(&self, query: Q) -> Result<Vec<R>, UserRepoError>
    where
        Q: diesel_async::methods::LoadQuery<'q, AsyncPgConnection, R> + Send + 'q,
        R: Send,
    {
        let mut conn = self.checkout().await?;
        let outcome = tokio::time::timeout(self.query_timeout, query.load(&mut conn)).await;
        self.settle(conn, outcome)
    }

    /// Ends the use of a connection. A statement that timed out may still be running on it,
    /// so the connection is taken out of the pool rather than handed to the next caller.
    pub(crate) fn settle<T>(
        &self,
        conn: PooledConnection,
        outcome: Result<QueryResult<T>, Elapsed>,
    ) -> Result<T, UserRepoError> {
        match outcome {
            Ok(result) => result.map_err(errors::from_diesel),
            Err(_) => {
                // Cancel it first: a dropped socket does not stop a statement that waits on a
                // lock, and the server would keep that backend until the statement ends.
                let token = conn.cancel_token();
                drop(Object::take(conn));
                if let Some(connector) = &self.canceller {
                    let connector = Arc::clone(connector);
                    let bound = self.acquire_timeout;
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(bound, connector.cancel(token)).await;
                    });
                }
                Err(errors::timed_out("running a statement", self.query_timeout))
            }
        }
    }
}

impl PgUserRepository {
    /// Runs `change` and, when it says it changed something, queues `mail`, in one
    /// transaction under one `query_timeout`: a mail that cannot be queued undoes the change.
    async fn transact_with_mail<'a, T, F>(
        &self,
        mail: &'a QueuedMail,
        change: F,
    ) -> Result<T, UserRepoError>
    where
        T: Send + 'a,
        F: for<'r> FnOnce(
                &'r mut AsyncPgConnection,
            ) -> ScopedBoxFuture<'a, 'r, QueryResult<(T, bool)>>
            + Send
            + 'a,
    {
        let mut conn = self.checkout().await?;
        let work = conn.transaction(move |conn| {
            async move {
                let (value, changed) = change(&mut *conn).await?;
                if changed {
                    crate::outbox::enqueue_query(mail).execute(conn).await?;
                }
                Ok(value)
            }
            .scope_boxed()
        });
        let outcome = tokio::time::timeout(self.query_timeout, work).await;
        self.settle(conn, outcome)
    }
}

impl fmt::Debug for PgUserRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgUserRepository")
            .field("pool", &self.pool.status())
            .field("acquire_timeout", &self.acquire_timeout)
            .field("query_timeout", &self.query_timeout)
            .finish()
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
struct UserRow {
    id: Uuid,
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
        let role = Role::parse(&self.role).ok_or_else(|| {
            UserRepoError::Other(format!("user {} has an unknown stored role", self.id).into())
        })?;
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
        let email = EmailAddress::parse(&self.email).map_err(|e| {
            UserRepoError::Other(
                format!("user {} has an invalid stored address: {e}", self.id).into(),
            )
        })?;
        Ok(User {
            id: UserId::from_uuid(self.id),
            email,
            verified_at: self.verified_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
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

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: Uuid,
    email: &'a str,
    password_hash: &'a str,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    language: Option<&'a str>,
}

impl<'a> From<&'a NewUser> for NewUserRow<'a> {
    fn from(new_user: &'a NewUser) -> Self {
        Self {
            id: new_user.id.as_uuid(),
            email: new_user.email.as_str(),
            password_hash: new_user.password_hash.as_str(),
            created_at: new_user.created_at,
            updated_at: new_user.created_at,
            language: new_user.language.as_deref(),
        }
    }
}

impl PgUserRepository {
    /// Runs `change` (an UPDATE or DELETE of one account) and queues `mail` with it;
    /// [`UserRepoError::NotFound`], and no mail, when it matched no row.
    async fn updated_with_mail<Q>(&self, change: Q, mail: &QueuedMail) -> Result<(), UserRepoError>
    where
        Q: diesel_async::methods::ExecuteDsl<AsyncPgConnection> + Send,
    {
        let changed = self
            .transact_with_mail(mail, |conn| {
                async move {
                    let rows = change.execute(conn).await?;
                    Ok((rows > 0, rows > 0))
                }
                .scope_boxed()
            })
            .await?;
        if changed {
            Ok(())
        } else {
            Err(UserRepoError::NotFound)
        }
    }
}

#[async_trait::async_trait]
impl UserRepository for PgUserRepository {
    #[tracing::instrument(name = "pg.users.create", skip_all, fields(user_id = %new_user.id))]
    async fn create(&self, new_user: &NewUser) -> Result<User, UserRepoError> {
        let row = NewUserRow::from(new_user);
        let mut conn = self.checkout().await?;
        // No read before the write: the unique index decides, so concurrent signups of one
        // address yield one row and `Duplicate` for the others.
        let query = diesel::insert_into(users::table)
            .values(&row)
            .returning(UserRow::as_returning());
        let outcome = tokio::time::timeout(self.query_timeout, query.get_result(&mut conn)).await;
        self.settle(conn, outcome)?.into_user()
    }

    #[tracing::instrument(name = "pg.users.find_by_email", skip_all)]
    async fn find_by_email(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<UserCredentials>, UserRepoError> {
        let mut conn = self.checkout().await?;
        // Same expression as the unique index, so the lookup uses it and agrees with it.
        let query = users::table
            .filter(lower(users::email).eq(lower(email.as_str())))
            .select(UserRow::as_select());
        let outcome = tokio::time::timeout(self.query_timeout, query.first(&mut conn))
            .await
            .map(OptionalExtension::optional);
        self.settle(conn, outcome)?
            .map(UserRow::into_credentials)
            .transpose()
    }

    #[tracing::instrument(name = "pg.users.find_by_id", skip_all, fields(user_id = %id))]
    async fn find_by_id(&self, id: UserId) -> Result<Option<UserCredentials>, UserRepoError> {
        let mut conn = self.checkout().await?;
        let query = users::table.find(id.as_uuid()).select(UserRow::as_select());
        let outcome = tokio::time::timeout(self.query_timeout, query.first(&mut conn))
            .await
            .map(OptionalExtension::optional);
        self.settle(conn, outcome)?
            .map(UserRow::into_credentials)
            .transpose()
    }

    #[tracing::instrument(
        name = "pg.users.replace_unverified_password",
        skip_all,
        fields(user_id = %id)
    )]
    async fn replace_unverified_password(
        &self,
        id: UserId,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError> {
        let mut conn = self.checkout().await?;
        // The state check is part of the UPDATE, so a verification that lands between a read
        // and this write can never be overwritten.
        let query = diesel::update(
            users::table
                .filter(users::id.eq(id.as_uuid()))
                .filter(users::verified_at.is_null()),
        )
        .set((
            users::password_hash.eq(password_hash.as_str()),
            users::updated_at.eq(at),
        ));
        let outcome = tokio::time::timeout(self.query_timeout, query.execute(&mut conn)).await;
        match self.settle(conn, outcome)? {
            0 => Err(UserRepoError::NotFound),
            _ => Ok(()),
        }
    }

    #[tracing::instrument(name = "pg.users.mark_verified", skip_all, fields(user_id = %id))]
    async fn mark_verified(&self, id: UserId, at: DateTime<Utc>) -> Result<User, UserRepoError> {
        let mut conn = self.checkout().await?;
        // One statement that keeps the first verification time; `SET` expressions all see the
        // old row, so `updated_at` only moves when this call is the one that verifies.
        let query = diesel::update(users::table.find(id.as_uuid()))
            .set((
                users::verified_at.eq(coalesce(users::verified_at, Some(at))),
                users::updated_at.eq(case_when::<_, _, Timestamptz>(
                    users::verified_at.is_null(),
                    at,
                )
                .otherwise(users::updated_at)),
            ))
            .returning(UserRow::as_returning());
        let outcome = tokio::time::timeout(self.query_timeout, query.get_result(&mut conn))
            .await
            .map(OptionalExtension::optional);
        self.settle(conn, outcome)?
            .ok_or(UserRepoError::NotFound)?
            .into_user()
    }

    #[tracing::instrument(name = "pg.users.set_email", skip_all, fields(user_id = %id))]
    async fn set_email(
        &self,
        id: UserId,
        from: &EmailAddress,
        to: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<User, UserRepoError> {
        let mut conn = self.checkout().await?;
        let (id, from, to) = (
            id.as_uuid(),
            from.as_str().to_owned(),
            to.as_str().to_owned(),
        );
        let hash = password_hash.as_str().to_owned();
        // One transaction: the compare (address, password hash, enabled) locks the account's
        // row; a pending (unverified) signup at the new address goes (whoever confirms holds
        // the code from that mailbox); then the move, with the unique index deciding against a
        // verified account there and between two accounts moving to one address.
        let work = conn.transaction(move |conn| {
            async move {
                let matched = users::table
                    .find(id)
                    .filter(users::email.eq(&from))
                    .filter(users::password_hash.eq(&hash))
                    .filter(users::disabled_at.is_null())
                    .select(users::id)
                    .for_update()
                    .first::<Uuid>(conn)
                    .await
                    .optional()?;
                if matched.is_none() {
                    return Ok(None);
                }
                diesel::delete(
                    users::table
                        .filter(lower(users::email).eq(lower(&to)))
                        .filter(users::verified_at.is_null())
                        .filter(users::id.ne(id)),
                )
                .execute(conn)
                .await?;
                diesel::update(users::table.find(id))
                    .set((users::email.eq(&to), users::updated_at.eq(at)))
                    .returning(UserRow::as_returning())
                    .get_result(conn)
                    .await
                    .map(Some)
            }
            .scope_boxed()
        });
        let outcome = tokio::time::timeout(self.query_timeout, work).await;
        self.settle(conn, outcome)?
            .ok_or(UserRepoError::NotFound)?
            .into_user()
    }

    #[tracing::instrument(name = "pg.users.set_password_hash", skip_all, fields(user_id = %id))]
    async fn set_password_hash(
        &self,
        id: UserId,
        email: &EmailAddress,
        password_hash: &PasswordHash,
        at: DateTime<Utc>,
    ) -> Result<(), UserRepoError> {
        let mut conn = self.checkout().await?;
        // One statement: the compare on the address and the write.
        let query = diesel::update(
            users::table
                .find(id.as_uuid())
                .filter(users::email.eq(email.as_str())),
        )
        .set((
            users::password_hash.eq(password_hash.as_str()),
            users::updated_at.eq(at),
        ));
        let outcome = tokio::time::timeout(self.query_timeout, query.execute(&mut conn)).await;
        match self.settle(conn, outcome)? {
            0 => Err(UserRepoError::NotFound),
            _ => Ok(()),
        }
    }

    #[tracing::instrument(name = "pg.users.delete", skip_all, fields(user_id = %id))]
    async fn delete(&self, id: UserId) -> Result<bool, UserRepoError> {
        let mut conn = self.checkout().await?;
        let query = diesel::delete(users::table.find(id.as_uuid()));
        let outcome = tokio::time::timeout(self.query_timeout, query.execute(&mut conn)).await;
        Ok(self.settle(conn, outcome)? > 0)
    }

    #[tracing::instrument(name = "pg.users.create_with_mail", skip_all, fields(user_id = %new_user.id))]
    async fn create_with_mail(
        &self,
        new_user: &NewUser,
        mail: &QueuedMail,
    ) -> Result<User, UserRepoError> {
        let row = NewUserRow::from(new_user);
        self.transact_with_mail(mail, |conn| {
            async move {
                let query = diesel::insert_into(users::table)
                    .values(&row)
                    .returning(UserRow::as_returning());
                Ok((query.get_result::<UserRow>(conn).await?, true))
            }
            .scope_boxed()
        })
        .await?
        .into_user()
    }

    #[tracing::instrument(
        name = "pg.users.replace_unverified_password_with_mail",
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
        let query = diesel::update(
            users::table
                .filter(users::id.eq(id.as_uuid()))
                .filter(users::verified_at.is_null()),
        )
        .set((
            users::password_hash.eq(password_hash.as_str()),
            users::updated_at.eq(at),
        ));
        self.updated_with_mail(query, mail).await
    }

    #[tracing::instrument(
        name = "pg.users.set_password_hash_with_mail",
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
        let query = diesel::update(
            users::table
                .find(id.as_uuid())
                .filter(users::email.eq(email.as_str())),
        )
        .set((
            users::password_hash.eq(password_hash.as_str()),
            users::updated_at.eq(at),
        ));
        self.updated_with_mail(query, mail).await
    }

    #[tracing::instrument(name = "pg.users.delete_with_mail", skip_all, fields(user_id = %id))]
    async fn delete_with_mail(&self, id: UserId, mail: &QueuedMail) -> Result<bool, UserRepoError> {
        let query = diesel::delete(users::table.find(id.as_uuid()));
        match self.updated_with_mail(query, mail).await {
            Ok(()) => Ok(true),
            Err(UserRepoError::NotFound) => Ok(false),
            Err(e) => Err(e),
        }
    }

    #[tracing::instrument(name = "pg.users.list", skip_all)]
    async fn list(&self, query: &UserQuery) -> Result<Vec<AccountSummary>, UserRepoError> {
        let mut q = users::table.select(UserRow::as_select()).into_boxed();
        if let Some(prefix) = &query.email_prefix {
            q = q.filter(
                lower(users::email)
                    .like(format!("{}%", escape_like(&prefix.to_lowercase())))
                    .escape('\\'),
            );
        }
        if let Some(after) = &query.after {
            q = q.filter(lower(users::email).gt(after.as_str().to_lowercase()));
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
        let q = q.order(lower(users::email).asc()).limit(limit);
        let mut conn = self.checkout().await?;
        let outcome = tokio::time::timeout(self.query_timeout, q.load::<UserRow>(&mut conn)).await;
        self.settle(conn, outcome)?
            .into_iter()
            .map(UserRow::into_summary)
            .collect()
    }

    #[tracing::instrument(name = "pg.users.set_role", skip_all, fields(user_id = %id))]
    async fn set_role(&self, id: UserId, role: Role) -> Result<(), UserRepoError> {
        let mut conn = self.checkout().await?;
        let query =
            diesel::update(users::table.find(id.as_uuid())).set(users::role.eq(role.as_str()));
        let outcome = tokio::time::timeout(self.query_timeout, query.execute(&mut conn)).await;
        match self.settle(conn, outcome)? {
            0 => Err(UserRepoError::NotFound),
            _ => Ok(()),
        }
    }

    #[tracing::instrument(name = "pg.users.set_disabled", skip_all, fields(user_id = %id))]
    async fn set_disabled(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<(), UserRepoError> {
        let mut conn = self.checkout().await?;
        let target = users::table.find(id.as_uuid());
        // An earlier disabling time is kept, in the same statement.
        let outcome = match disabled_at {
            Some(at) => {
                let query = diesel::update(target)
                    .set(users::disabled_at.eq(coalesce(users::disabled_at, Some(at))));
                tokio::time::timeout(self.query_timeout, query.execute(&mut conn)).await
            }
            None => {
                let query =
                    diesel::update(target).set(users::disabled_at.eq(None::<DateTime<Utc>>));
                tokio::time::timeout(self.query_timeout, query.execute(&mut conn)).await
            }
        };
        match self.settle(conn, outcome)? {
            0 => Err(UserRepoError::NotFound),
            _ => Ok(()),
        }
    }

    #[tracing::instrument(name = "pg.users.set_role_with_mail", skip_all, fields(user_id = %id))]
    async fn set_role_with_mail(
        &self,
        id: UserId,
        role: Role,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let query =
            diesel::update(users::table.find(id.as_uuid())).set(users::role.eq(role.as_str()));
        self.updated_with_mail(query, mail).await
    }

    #[tracing::instrument(name = "pg.users.set_disabled_with_mail", skip_all, fields(user_id = %id))]
    async fn set_disabled_with_mail(
        &self,
        id: UserId,
        disabled_at: Option<DateTime<Utc>>,
        mail: &QueuedMail,
    ) -> Result<(), UserRepoError> {
        let target = users::table.find(id.as_uuid());
        match disabled_at {
            Some(at) => {
                let query = diesel::update(target)
                    .set(users::disabled_at.eq(coalesce(users::disabled_at, Some(at))));
                self.updated_with_mail(query, mail).await
            }
            None => {
                let query =
                    diesel::update(target).set(users::disabled_at.eq(None::<DateTime<Utc>>));
                self.updated_with_mail(query, mail).await
            }
        }
    }

    #[tracing::instrument(name = "pg.users.ping", skip_all)]
    async fn ping(&self) -> Result<(), UserRepoError> {
        let mut conn = self.checkout().await?;
        let query = diesel::sql_query("SELECT 1");
        let outcome = tokio::time::timeout(self.query_timeout, query.execute(&mut conn)).await;
        self.settle(conn, outcome).map(|_| ())
    }
}
