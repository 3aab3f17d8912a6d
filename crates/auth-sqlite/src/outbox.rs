//! [`SqliteOutbox`]: the [`OutboxStore`] port on SQLite.

use std::fmt;
use std::time::Duration;

use auth_core::{
    ClaimedMail, EmailAddress, MailState, OutboxEntry, OutboxError, OutboxStats, OutboxStore,
    QueuedMail, SuppressionReason,
};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::dsl::case_when;
use diesel::prelude::*;
use diesel::sql_types::{Text, TimestamptzSqlite};
use diesel::upsert::excluded;
use uuid::Uuid;

use crate::database::Database;
use crate::schema::{mail_outbox, mail_suppressions};

const PENDING: &str = "pending";
const DEAD: &str = "dead";

/// [`OutboxStore`] backed by the `mail_outbox` and `mail_suppressions` tables of the database
/// of a [`SqliteUserRepository`](crate::SqliteUserRepository), made by
/// [`SqliteUserRepository::outbox`](crate::SqliteUserRepository::outbox).
///
/// It shares the repository's pool: its writes take turns with the repository's in this
/// process, an in-memory database holds both the accounts and the outbox, and closing the
/// repository closes the outbox. Cheap to clone (clones share the pool).
///
/// - Every write runs in one `BEGIN IMMEDIATE` transaction: a [claim](OutboxStore::claim)
///   selects the due messages and leases them while holding SQLite's only write lock, so
///   concurrent claims (tasks of this process, or other processes on the file) never return
///   the same message. Each claimed message gets its own lease, a random UUID.
/// - A message is *unclaimed* when it holds no lease: [`retry_at`](OutboxStore::retry_at),
///   [`bury`](OutboxStore::bury) and [`revive`](OutboxStore::revive) release it. Enqueuing a
///   message with a [`supersedes`](QueuedMail::supersedes) key deletes the pending, unclaimed
///   messages with the same recipient and key; one under a lease, even a lapsed one, stays.
/// - Suppressions are keyed by the lower-cased address; a suppression never shortens an
///   existing one.
/// - The sealed content is stored as given, in a `BLOB`, and deleted with its row. Times are
///   stored like the accounts' (UTC text, to the nanosecond), so they read back exactly.
/// - Outages (a lock held past `busy_timeout`, no connection in time, a closed pool, I/O
///   errors) are [`OutboxError::Unavailable`]; everything else, a reused message id
///   included, is [`OutboxError::Other`].
///
/// ```no_run
/// use std::sync::Arc;
/// use auth_core::OutboxStore;
/// use auth_sqlite::{SqliteSettings, SqliteUserRepository};
///
/// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
/// let settings = SqliteSettings::from_url("sqlite://./data/secureauth.db")?;
/// let users = SqliteUserRepository::open(&settings).await?;
/// let outbox: Arc<dyn OutboxStore> = Arc::new(users.outbox());
/// # let _ = outbox;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SqliteOutbox {
    db: Database,
}

impl SqliteOutbox {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl fmt::Debug for SqliteOutbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteOutbox")
            .field("db", &self.db)
            .finish()
    }
}

#[derive(Insertable)]
#[diesel(table_name = mail_outbox)]
pub(crate) struct NewMailRow {
    id: String,
    recipient: String,
    kind: String,
    supersedes: Option<String>,
    sealed: Vec<u8>,
    state: &'static str,
    attempts: i64,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

impl NewMailRow {
    /// Queues the message, deleting the unsent ones it supersedes (how many), inside the
    /// caller's write transaction: [`SqliteOutbox::enqueue`]'s, or that of the change the mail
    /// belongs to (see the repository's `*_with_mail` methods).
    pub(crate) fn enqueue(&self, conn: &mut SqliteConnection) -> QueryResult<usize> {
        let superseded = match &self.supersedes {
            Some(key) => diesel::delete(
                mail_outbox::table
                    // `=` compares with the column's NOCASE collation.
                    .filter(mail_outbox::recipient.eq(&self.recipient))
                    .filter(mail_outbox::supersedes.eq(key))
                    .filter(mail_outbox::state.eq(PENDING))
                    // Unclaimed: never leased, or its courier's lease ran out.
                    .filter(
                        mail_outbox::lease_until
                            .is_null()
                            .or(mail_outbox::lease_until.le(self.created_at)),
                    ),
            )
            .execute(conn)?,
            None => 0,
        };
        diesel::insert_into(mail_outbox::table)
            .values(self)
            .execute(conn)?;
        Ok(superseded)
    }

    /// A pending message, due at its creation.
    pub(crate) fn pending(mail: &QueuedMail) -> Self {
        Self {
            id: uuid_text(mail.id),
            recipient: mail.to.as_str().to_owned(),
            kind: mail.kind.clone(),
            supersedes: mail.supersedes.clone(),
            sealed: mail.sealed.clone(),
            state: PENDING,
            attempts: 0,
            created_at: mail.created_at,
            next_attempt_at: mail.created_at,
            expires_at: mail.expires_at,
        }
    }
}

/// What a claim returns: the message, content included, and its new lease.
#[derive(Queryable, Selectable)]
#[diesel(table_name = mail_outbox, check_for_backend(diesel::sqlite::Sqlite))]
struct ClaimedRow {
    id: String,
    recipient: String,
    kind: String,
    supersedes: Option<String>,
    sealed: Vec<u8>,
    attempts: i64,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    lease_id: Option<String>,
}

impl ClaimedRow {
    fn into_claimed(self) -> Result<ClaimedMail, OutboxError> {
        let id = parse_uuid(&self.id, "message id")?;
        let lease = self
            .lease_id
            .as_deref()
            .ok_or_else(|| stored(format!("message {id} was claimed without a lease")))
            .and_then(|lease| parse_uuid(lease, "lease"))?;
        Ok(ClaimedMail {
            mail: QueuedMail {
                id,
                to: parse_address(&self.recipient, id)?,
                kind: self.kind,
                supersedes: self.supersedes,
                sealed: self.sealed,
                created_at: self.created_at,
                expires_at: self.expires_at,
            },
            attempts: attempts(self.attempts),
            lease,
        })
    }
}

/// What an operator sees of a message: everything but its content.
#[derive(Queryable, Selectable)]
#[diesel(table_name = mail_outbox, check_for_backend(diesel::sqlite::Sqlite))]
struct EntryRow {
    id: String,
    recipient: String,
    kind: String,
    state: String,
    attempts: i64,
    created_at: DateTime<Utc>,
    next_attempt_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    last_error: Option<String>,
}

impl EntryRow {
    fn into_entry(self) -> Result<OutboxEntry, OutboxError> {
        let id = parse_uuid(&self.id, "message id")?;
        let state = match self.state.as_str() {
            PENDING => MailState::Pending,
            DEAD => MailState::Dead,
            other => {
                return Err(stored(format!(
                    "message {id} has an unknown state {other:?}"
                )))
            }
        };
        Ok(OutboxEntry {
            id,
            to: parse_address(&self.recipient, id)?,
            kind: self.kind,
            state,
            attempts: attempts(self.attempts),
            created_at: self.created_at,
            next_attempt_at: self.next_attempt_at,
            expires_at: self.expires_at,
            last_error: self.last_error,
        })
    }
}

fn uuid_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// The key of an address in `mail_suppressions`. Parsed addresses are already lower-case;
/// lower-casing again keeps the key right should that ever change.
fn address_key(to: &EmailAddress) -> String {
    to.as_str().to_lowercase()
}

/// An error about a row this adapter did not write (or a bug): not an outage.
fn stored(message: String) -> OutboxError {
    OutboxError::Other(message.into())
}

fn parse_uuid(text: &str, what: &str) -> Result<Uuid, OutboxError> {
    Uuid::parse_str(text).map_err(|_| stored(format!("a stored {what} is not a UUID")))
}

fn parse_address(text: &str, id: Uuid) -> Result<EmailAddress, OutboxError> {
    // The address itself stays out of the error: it is personal data.
    EmailAddress::parse(text)
        .map_err(|e| stored(format!("message {id} has an invalid stored recipient: {e}")))
}

/// The schema keeps attempts non-negative; a count past `u32::MAX` reads as `u32::MAX`.
fn attempts(stored: i64) -> u32 {
    u32::try_from(stored.max(0)).unwrap_or(u32::MAX)
}

/// A number of rows as SQL's `LIMIT` takes it.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

fn count(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}

/// When a lease taken at `now` runs out.
fn lease_end(now: DateTime<Utc>, lease: Duration) -> Result<DateTime<Utc>, OutboxError> {
    TimeDelta::from_std(lease)
        .ok()
        .and_then(|lease| now.checked_add_signed(lease))
        .ok_or_else(|| {
            stored(format!(
                "a lease of {lease:?} ends out of the range of times"
            ))
        })
}

#[async_trait::async_trait]
impl OutboxStore for SqliteOutbox {
    #[tracing::instrument(
        name = "sqlite.outbox.enqueue",
        skip_all,
        fields(mail_id = %mail.id, kind = %mail.kind)
    )]
    async fn enqueue(&self, mail: &QueuedMail) -> Result<(), OutboxError> {
        let row = NewMailRow::pending(mail);
        let superseded = self.db.write(move |conn| row.enqueue(conn)).await?;
        if superseded > 0 {
            tracing::debug!(superseded, "unsent messages replaced");
        }
        Ok(())
    }

    #[tracing::instrument(name = "sqlite.outbox.claim", skip_all, fields(limit = limit))]
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedMail>, OutboxError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let until = lease_end(now, lease)?;
        let rows = self
            .db
            .write(move |conn| {
                let due: Vec<String> = mail_outbox::table
                    .filter(mail_outbox::state.eq(PENDING))
                    .filter(mail_outbox::next_attempt_at.le(now))
                    .filter(
                        mail_outbox::lease_id
                            .is_null()
                            .or(mail_outbox::lease_until.le(now)),
                    )
                    .order((mail_outbox::created_at.asc(), mail_outbox::id.asc()))
                    .limit(sql_limit(limit))
                    .select(mail_outbox::id)
                    .load(conn)?;
                due.into_iter()
                    .map(|id| {
                        diesel::update(mail_outbox::table.find(id))
                            .set((
                                mail_outbox::lease_id.eq(uuid_text(Uuid::new_v4())),
                                mail_outbox::lease_until.eq(until),
                            ))
                            .returning(ClaimedRow::as_returning())
                            .get_result(conn)
                    })
                    .collect::<QueryResult<Vec<ClaimedRow>>>()
            })
            .await?;
        rows.into_iter().map(ClaimedRow::into_claimed).collect()
    }

    #[tracing::instrument(name = "sqlite.outbox.remove", skip_all, fields(mail_id = %id))]
    async fn remove(&self, id: Uuid, lease: Uuid) -> Result<bool, OutboxError> {
        let (id, lease) = (uuid_text(id), uuid_text(lease));
        let deleted = self
            .db
            .write(move |conn| {
                diesel::delete(
                    mail_outbox::table
                        .find(id)
                        .filter(mail_outbox::lease_id.eq(lease)),
                )
                .execute(conn)
            })
            .await?;
        Ok(deleted > 0)
    }

    #[tracing::instrument(name = "sqlite.outbox.retry_at", skip_all, fields(mail_id = %id))]
    async fn retry_at(
        &self,
        id: Uuid,
        lease: Uuid,
        at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, OutboxError> {
        let (id, lease, error) = (uuid_text(id), uuid_text(lease), error.to_owned());
        let updated = self
            .db
            .write(move |conn| {
                diesel::update(
                    mail_outbox::table
                        .find(id)
                        .filter(mail_outbox::lease_id.eq(lease))
                        .filter(mail_outbox::state.eq(PENDING)),
                )
                .set((
                    mail_outbox::attempts.eq(mail_outbox::attempts + 1),
                    mail_outbox::last_error.eq(error),
                    mail_outbox::next_attempt_at.eq(at),
                    mail_outbox::lease_id.eq(None::<String>),
                    mail_outbox::lease_until.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)
            })
            .await?;
        Ok(updated > 0)
    }

    #[tracing::instrument(name = "sqlite.outbox.bury", skip_all, fields(mail_id = %id))]
    async fn bury(&self, id: Uuid, lease: Uuid, error: &str) -> Result<bool, OutboxError> {
        let (id, lease, error) = (uuid_text(id), uuid_text(lease), error.to_owned());
        let updated = self
            .db
            .write(move |conn| {
                diesel::update(
                    mail_outbox::table
                        .find(id)
                        .filter(mail_outbox::lease_id.eq(lease))
                        .filter(mail_outbox::state.eq(PENDING)),
                )
                .set((
                    mail_outbox::state.eq(DEAD),
                    mail_outbox::attempts.eq(mail_outbox::attempts + 1),
                    mail_outbox::last_error.eq(error),
                    mail_outbox::lease_id.eq(None::<String>),
                    mail_outbox::lease_until.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)
            })
            .await?;
        Ok(updated > 0)
    }

    #[tracing::instrument(name = "sqlite.outbox.suppress", skip_all, fields(reason = reason.as_str()))]
    async fn suppress(
        &self,
        to: &EmailAddress,
        until: DateTime<Utc>,
        reason: SuppressionReason,
    ) -> Result<(), OutboxError> {
        let address = address_key(to);
        self.db
            .write(move |conn| {
                // One statement: the row is created, or its end moves later (with the reason
                // of the suppression that ends last), never earlier. Both `SET` expressions
                // see the old row. (Diesel has no `DO UPDATE ... WHERE` for SQLite.)
                let later = excluded(mail_suppressions::until).gt(mail_suppressions::until);
                diesel::insert_into(mail_suppressions::table)
                    .values((
                        mail_suppressions::address.eq(address),
                        mail_suppressions::until.eq(until),
                        mail_suppressions::reason.eq(reason.as_str()),
                    ))
                    .on_conflict(mail_suppressions::address)
                    .do_update()
                    .set((
                        mail_suppressions::until.eq(case_when::<_, _, TimestamptzSqlite>(
                            later,
                            excluded(mail_suppressions::until),
                        )
                        .otherwise(mail_suppressions::until)),
                        mail_suppressions::reason.eq(case_when::<_, _, Text>(
                            later,
                            excluded(mail_suppressions::reason),
                        )
                        .otherwise(mail_suppressions::reason)),
                    ))
                    .execute(conn)
            })
            .await?;
        Ok(())
    }

    #[tracing::instrument(name = "sqlite.outbox.suppression", skip_all)]
    async fn suppression(
        &self,
        to: &EmailAddress,
        now: DateTime<Utc>,
    ) -> Result<Option<(DateTime<Utc>, SuppressionReason)>, OutboxError> {
        let address = address_key(to);
        let row: Option<(DateTime<Utc>, String)> = self
            .db
            .read(move |conn| {
                mail_suppressions::table
                    .find(address)
                    .filter(mail_suppressions::until.gt(now))
                    .select((mail_suppressions::until, mail_suppressions::reason))
                    .first(conn)
                    .optional()
            })
            .await?;
        row.map(|(until, reason)| {
            SuppressionReason::parse(&reason)
                .map(|reason| (until, reason))
                .ok_or_else(|| stored(format!("unknown stored suppression reason {reason:?}")))
        })
        .transpose()
    }

    #[tracing::instrument(name = "sqlite.outbox.stats", skip_all)]
    async fn stats(&self, now: DateTime<Utc>) -> Result<OutboxStats, OutboxError> {
        let (pending, oldest_pending, dead, suppressed) = self
            .db
            .read(move |conn| {
                let pending: i64 = mail_outbox::table
                    .filter(mail_outbox::state.eq(PENDING))
                    .count()
                    .get_result(conn)?;
                let oldest_pending: Option<DateTime<Utc>> = mail_outbox::table
                    .filter(mail_outbox::state.eq(PENDING))
                    .order(mail_outbox::created_at.asc())
                    .select(mail_outbox::created_at)
                    .first(conn)
                    .optional()?;
                let dead: i64 = mail_outbox::table
                    .filter(mail_outbox::state.eq(DEAD))
                    .count()
                    .get_result(conn)?;
                let suppressed: i64 = mail_suppressions::table
                    .filter(mail_suppressions::until.gt(now))
                    .count()
                    .get_result(conn)?;
                Ok((pending, oldest_pending, dead, suppressed))
            })
            .await?;
        let total = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok(OutboxStats {
            pending: total(pending),
            oldest_pending,
            dead: total(dead),
            suppressed: total(suppressed),
        })
    }

    #[tracing::instrument(name = "sqlite.outbox.list", skip_all, fields(state = state.as_str(), limit = limit))]
    async fn list(&self, state: MailState, limit: usize) -> Result<Vec<OutboxEntry>, OutboxError> {
        let rows = self
            .db
            .read(move |conn| {
                mail_outbox::table
                    .filter(mail_outbox::state.eq(state.as_str()))
                    .order((mail_outbox::created_at.asc(), mail_outbox::id.asc()))
                    .limit(sql_limit(limit))
                    .select(EntryRow::as_select())
                    .load(conn)
            })
            .await?;
        rows.into_iter().map(EntryRow::into_entry).collect()
    }

    #[tracing::instrument(name = "sqlite.outbox.revive", skip_all, fields(mail_id = ?id))]
    async fn revive(&self, id: Option<Uuid>, now: DateTime<Utc>) -> Result<u64, OutboxError> {
        let id = id.map(uuid_text);
        let revived = self
            .db
            .write(move |conn| {
                let changes = (
                    mail_outbox::state.eq(PENDING),
                    mail_outbox::attempts.eq(0),
                    mail_outbox::next_attempt_at.eq(now),
                    mail_outbox::lease_id.eq(None::<String>),
                    mail_outbox::lease_until.eq(None::<DateTime<Utc>>),
                );
                let dead = mail_outbox::table.filter(mail_outbox::state.eq(DEAD));
                match id {
                    Some(id) => diesel::update(dead.filter(mail_outbox::id.eq(id)))
                        .set(changes)
                        .execute(conn),
                    None => diesel::update(dead).set(changes).execute(conn),
                }
            })
            .await?;
        Ok(count(revived))
    }

    #[tracing::instrument(name = "sqlite.outbox.purge", skip_all, fields(mail_id = ?id))]
    async fn purge(&self, id: Option<Uuid>) -> Result<u64, OutboxError> {
        let id = id.map(uuid_text);
        let purged = self
            .db
            .write(move |conn| {
                let dead = mail_outbox::table.filter(mail_outbox::state.eq(DEAD));
                match id {
                    Some(id) => diesel::delete(dead.filter(mail_outbox::id.eq(id))).execute(conn),
                    None => diesel::delete(dead).execute(conn),
                }
            })
            .await?;
        Ok(count(purged))
    }

    #[tracing::instrument(name = "sqlite.outbox.sweep", skip_all)]
    async fn sweep(&self, now: DateTime<Utc>) -> Result<u64, OutboxError> {
        let expired = self
            .db
            .write(move |conn| {
                let expired =
                    diesel::delete(mail_outbox::table.filter(mail_outbox::expires_at.lt(now)))
                        .execute(conn)?;
                // A suppression is over at its end (see `suppression`).
                diesel::delete(mail_suppressions::table.filter(mail_suppressions::until.le(now)))
                    .execute(conn)?;
                Ok(expired)
            })
            .await?;
        Ok(count(expired))
    }
}
