//! [`SessionStore`] on Redis.

use std::net::IpAddr;
use std::time::Duration;

use auth_core::{
    ClientInfo, EmailAddress, PasskeyId, Session, SessionCursor, SessionId, SessionPage,
    SessionStore, SessionStoreError, TokenHash, User, UserId, MAX_SESSIONS_PAGE,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pool::{Failure, Request, Retry};
use crate::RedisStore;

/// Version of [`SessionRecord`]; a record of another version is reported as corrupt rather
/// than misread.
const RECORD_VERSION: u8 = 1;

/// Longest TTL passed to Redis. Far beyond any session lifetime, and far below the point where
/// Redis refuses an expiry as out of range.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// What is stored under a session key. The token hash is the key itself, so it is not
/// repeated here. The Lua scripts read `id` and `user.id`: keep those names.
#[derive(Debug, Serialize, Deserialize)]
struct SessionRecord {
    v: u8,
    id: Uuid,
    user: UserRecord,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// Missing in records written before the idle timeout: login time then.
    #[serde(default)]
    last_seen_at: Option<DateTime<Utc>>,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    /// The passkey that opened the session; missing in records written before passkeys
    /// were remembered (and for every other way in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passkey: Option<Uuid>,
}

#[derive(Debug, Serialize, Deserialize)]
struct UserRecord {
    id: Uuid,
    email: String,
    verified_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl SessionRecord {
    fn from_domain(s: &Session) -> Self {
        Self {
            v: RECORD_VERSION,
            id: s.id.as_uuid(),
            user: UserRecord {
                id: s.user.id.as_uuid(),
                email: s.user.email.as_str().to_owned(),
                verified_at: s.user.verified_at,
                created_at: s.user.created_at,
                updated_at: s.user.updated_at,
            },
            created_at: s.created_at,
            expires_at: s.expires_at,
            last_seen_at: Some(s.last_seen_at),
            ip: s.client.ip,
            user_agent: s.client.user_agent.clone(),
            passkey: s.passkey.map(|p| p.as_uuid()),
        }
    }

    fn into_domain(self, token_hash: TokenHash) -> Result<Session, Failure> {
        if self.v != RECORD_VERSION {
            return Err(Failure::corrupt("session", "unknown record version"));
        }
        let email = EmailAddress::parse(&self.user.email)
            .map_err(|_| Failure::corrupt("session", "invalid e-mail address"))?;
        Ok(Session {
            passkey: self.passkey.map(PasskeyId::from_uuid),
            id: SessionId::from_uuid(self.id),
            token_hash,
            user: User {
                id: UserId::from_uuid(self.user.id),
                email,
                verified_at: self.user.verified_at,
                created_at: self.user.created_at,
                updated_at: self.user.updated_at,
            },
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_seen_at: self.last_seen_at.unwrap_or(self.created_at),
            // Not `ClientInfo::new`: it would re-truncate a value that was already bounded.
            client: ClientInfo {
                ip: self.ip,
                user_agent: self.user_agent,
                language: None,
                request_id: None,
            },
        })
    }
}

pub(crate) fn decode(json: &str, token_hash: TokenHash) -> Result<Session, Failure> {
    let record: SessionRecord = serde_json::from_str(json).map_err(|e| {
        // serde_json's message can quote the input; keep only where it broke.
        Failure::corrupt(
            "session",
            format!("{:?} error at column {}", e.classify(), e.column()),
        )
    })?;
    record.into_domain(token_hash)
}

pub(crate) fn encode(session: &Session) -> Result<String, Failure> {
    serde_json::to_string(&SessionRecord::from_domain(session))
        .map_err(|e| Failure::Other(Box::new(e)))
}

/// Milliseconds for `PX`/`PEXPIRE`: Redis refuses 0 and overflowing values.
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    let ms = ttl.min(MAX_TTL).as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// Runs a script that stores `session` under its key for `ttl` and indexes it under its
    /// user (`session_insert`, `session_touch`: same keys, same arguments; only insert uses
    /// the cap and the key prefix).
    async fn write_session(
        &self,
        script: &redis::Script,
        session: &Session,
        ttl: Duration,
        retry: Retry,
    ) -> Result<i64, Failure> {
        let keys = &self.inner.keys;
        let mut call = script.prepare_invoke();
        call.key(keys.session(&session.token_hash))
            .key(keys.user_sessions(session.user.id))
            .key(keys.user_session_ids(session.user.id))
            .arg(encode(session)?)
            .arg(ttl_millis(ttl))
            .arg(session.token_hash.to_hex())
            .arg(session.id.as_uuid().hyphenated().to_string())
            .arg(self.inner.max_sessions_per_user)
            .arg(keys.session_prefix());
        self.inner.exec.run(Request::Script(&call), retry).await
    }
}

/// Index entries one step of `delete_all_for_user` handles (plus one, so that the kept session
/// never stalls it): about a millisecond of Redis time.
pub(crate) const DELETE_ALL_STEP: usize = 127;

/// The cursor after the index entry `member` at `position` (as the list script returns them).
pub(crate) fn cursor_of(position: &str, member: &str) -> Result<SessionCursor, Failure> {
    let position = position
        .parse::<f64>()
        .ok()
        .filter(|p| p.is_finite() && p.abs() < 9.0e15)
        .ok_or_else(|| Failure::corrupt("session index", "position is not a number"))?;
    // Members written by earlier versions end in the session id (or are a bare token hash,
    // which sorts after every id of its position: the nil id then resumes just after it).
    let id = member.rsplit(':').next().and_then(SessionId::parse);
    #[allow(clippy::cast_possible_truncation)]
    let position = position as i64;
    Ok(SessionCursor::new(
        position,
        id.unwrap_or_else(|| SessionId::from_uuid(Uuid::nil())),
    ))
}

/// How long a revocation epoch is kept after its last raise: far longer than a login takes
/// between its two reads (an entry that expired reads 0, which a login in flight sees as a
/// change and fails safe).
const EPOCH_RETENTION_MS: u64 = 30 * 24 * 60 * 60 * 1000;

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn insert(&self, session: &Session, ttl: Duration) -> Result<(), SessionStoreError> {
        if self.inner.cluster {
            return Ok(self.cluster_insert(session, ttl).await?);
        }
        let script = &self.inner.scripts.session_insert;
        self.write_session(script, session, ttl, Retry::Never)
            .await?;
        Ok(())
    }

    async fn get(&self, token_hash: &TokenHash) -> Result<Option<Session>, SessionStoreError> {
        // The hot path: exactly one GET (see `pool.rs` for why checkout adds no PING).
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.inner.keys.session(token_hash));
        let json: Option<String> = self
            .inner
            .exec
            .run(Request::Cmd(&cmd), Retry::Idempotent)
            .await?;
        Ok(json.map(|j| decode(&j, *token_hash)).transpose()?)
    }

    async fn touch(&self, session: &Session, ttl: Duration) -> Result<bool, SessionStoreError> {
        if self.inner.cluster {
            return Ok(self.cluster_touch(session, ttl).await?);
        }
        // Running it twice stores the same value with the same TTL: safe to retry.
        let script = &self.inner.scripts.session_touch;
        let live = self
            .write_session(script, session, ttl, Retry::Idempotent)
            .await?;
        Ok(live == 1)
    }

    async fn list_for_user(
        &self,
        user_id: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, SessionStoreError> {
        let keys = &self.inner.keys;
        let limit = limit.clamp(1, MAX_SESSIONS_PAGE);
        if self.inner.cluster {
            return Ok(self.cluster_list(user_id, after, limit).await?);
        }
        let mut call = self.inner.scripts.session_list.prepare_invoke();
        call.key(keys.user_sessions(user_id))
            .key(keys.user_session_ids(user_id))
            .arg(keys.session_prefix());
        match after {
            Some(c) => call
                .arg(c.position())
                .arg(c.id().as_uuid().hyphenated().to_string()),
            None => call.arg("").arg(""),
        };
        call.arg(limit);
        // Dropping dead index entries is idempotent, so this may be retried like a read.
        let flat: Vec<String> = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Idempotent)
            .await?;
        let [next_position, next_member, rest @ ..] = flat.as_slice() else {
            return Err(Failure::corrupt("session index", "short reply").into());
        };
        let next = if next_position.is_empty() {
            None
        } else {
            Some(cursor_of(next_position, next_member)?)
        };
        let mut sessions = Vec::with_capacity(rest.len() / 2);
        for pair in rest.chunks(2) {
            let [token, json] = pair else {
                return Err(Failure::corrupt("session index", "odd reply length").into());
            };
            let token_hash = TokenHash::from_hex(token)
                .ok_or_else(|| Failure::corrupt("session index", "not a token hash"))?;
            sessions.push(decode(json, token_hash)?);
        }
        Ok(SessionPage { sessions, next })
    }

    async fn open_privilege_window(
        &self,
        session_id: SessionId,
        until: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<(), SessionStoreError> {
        let mut cmd = redis::cmd("SET");
        let ttl_ms = u64::try_from(ttl.min(MAX_TTL).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        cmd.arg(self.inner.keys.privilege_window(session_id))
            .arg(until.timestamp_micros())
            .arg("PX")
            .arg(ttl_ms);
        let _: () = self
            .inner
            .exec
            .run(Request::Cmd(&cmd), Retry::Idempotent)
            .await?;
        Ok(())
    }

    async fn privilege_window(
        &self,
        session_id: SessionId,
    ) -> Result<Option<DateTime<Utc>>, SessionStoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.inner.keys.privilege_window(session_id));
        let micros: Option<i64> = self
            .inner
            .exec
            .run(Request::Cmd(&cmd), Retry::Idempotent)
            .await?;
        Ok(micros.and_then(DateTime::<Utc>::from_timestamp_micros))
    }

    async fn remember_device(
        &self,
        user_id: UserId,
        device: &auth_core::DeviceKey,
        seen_at: DateTime<Utc>,
        keep: usize,
        ttl: Duration,
    ) -> Result<auth_core::DeviceSighting, SessionStoreError> {
        let mut call = self.inner.scripts.device_remember.prepare_invoke();
        call.key(self.inner.keys.devices(user_id))
            .arg(device.to_hex())
            .arg(seen_at.timestamp_micros())
            .arg(keep.max(1))
            .arg(ttl_millis(ttl));
        // Not retried: a lost answer to a first sighting would come back as "known".
        let found: i64 = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        Ok(match found {
            0 => auth_core::DeviceSighting::Known,
            2 => auth_core::DeviceSighting::First,
            _ => auth_core::DeviceSighting::New,
        })
    }

    async fn revocation_epoch(&self, email: &EmailAddress) -> Result<u64, SessionStoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.inner.keys.revocation_epoch(email));
        let epoch: Option<u64> = self
            .inner
            .exec
            .run(Request::Cmd(&cmd), Retry::Idempotent)
            .await?;
        Ok(epoch.unwrap_or(0))
    }

    async fn bump_revocation_epoch(&self, email: &EmailAddress) -> Result<(), SessionStoreError> {
        let key = self.inner.keys.revocation_epoch(email);
        let mut incr = redis::cmd("INCR");
        incr.arg(&key);
        // Not retried: a second increment is harmless, but a lost answer must not hide an
        // outage from the caller, which then does not sweep.
        let _: u64 = self
            .inner
            .exec
            .run(Request::Cmd(&incr), Retry::Never)
            .await?;
        let mut expire = redis::cmd("PEXPIRE");
        expire.arg(&key).arg(EPOCH_RETENTION_MS);
        let _: i64 = self
            .inner
            .exec
            .run(Request::Cmd(&expire), Retry::Idempotent)
            .await?;
        Ok(())
    }

    async fn delete(&self, token_hash: &TokenHash) -> Result<bool, SessionStoreError> {
        if self.inner.cluster {
            return Ok(self.cluster_delete(token_hash).await?);
        }
        let keys = &self.inner.keys;
        let mut call = self.inner.scripts.session_delete.prepare_invoke();
        call.key(keys.session(token_hash))
            .arg(keys.user_sessions_prefix())
            .arg(token_hash.to_hex())
            .arg(keys.user_session_ids_prefix());
        // Deleting twice is harmless, but the second answer would say "there was none".
        let n: i64 = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        Ok(n == 1)
    }

    async fn delete_by_id(
        &self,
        user_id: UserId,
        session_id: SessionId,
    ) -> Result<bool, SessionStoreError> {
        if self.inner.cluster {
            return Ok(self.cluster_delete_by_id(user_id, session_id).await?);
        }
        let keys = &self.inner.keys;
        let mut call = self.inner.scripts.session_delete_by_id.prepare_invoke();
        call.key(keys.user_sessions(user_id))
            .key(keys.user_session_ids(user_id))
            .arg(keys.session_prefix())
            .arg(session_id.as_uuid().hyphenated().to_string())
            .arg(user_id.as_uuid().hyphenated().to_string());
        let n: i64 = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        Ok(n == 1)
    }

    async fn delete_all_for_user(
        &self,
        user_id: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64, SessionStoreError> {
        if self.inner.cluster {
            return Ok(self.cluster_delete_all(user_id, keep).await?);
        }
        let keys = &self.inner.keys;
        let keep = keep.map_or_else(String::new, |id| id.as_uuid().hyphenated().to_string());
        // Bounded steps: Redis serves other clients between them, however many sessions the
        // user has. A login that slips in between is the revocation epoch's business (see
        // `SessionStore::bump_revocation_epoch`).
        let mut revoked = 0u64;
        loop {
            let mut call = self.inner.scripts.session_delete_all.prepare_invoke();
            call.key(keys.user_sessions(user_id))
                .key(keys.user_session_ids(user_id))
                .arg(keys.session_prefix())
                .arg(user_id.as_uuid().hyphenated().to_string())
                .arg(&keep)
                .arg(DELETE_ALL_STEP);
            let (n, removed, left): (u64, u64, u64) = self
                .inner
                .exec
                .run(Request::Script(&call), Retry::Never)
                .await?;
            revoked += n;
            if left == 0 || removed == 0 {
                return Ok(revoked);
            }
        }
    }

    async fn ping(&self) -> Result<(), SessionStoreError> {
        Ok(self.inner.ping().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let now = Utc::now();
        Session {
            passkey: None,
            id: SessionId::from_uuid(Uuid::new_v4()),
            token_hash: TokenHash([7; 32]),
            user: User {
                id: UserId::from_uuid(Uuid::new_v4()),
                email: EmailAddress::parse("ada@example.com").unwrap(),
                verified_at: Some(now),
                created_at: now,
                updated_at: now,
            },
            created_at: now,
            expires_at: now + chrono::Duration::hours(1),
            last_seen_at: now + chrono::Duration::minutes(5),
            client: ClientInfo::new("2001:db8::1".parse().ok(), Some("Firefox \"quoted\" ☃")),
        }
    }

    #[test]
    fn a_record_without_last_use_reads_as_used_at_login() {
        let s = session();
        let json = encode(&s).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
        value.as_object_mut().unwrap().remove("last_seen_at");
        let old = decode(&value.to_string(), s.token_hash).unwrap();
        assert_eq!(old.last_seen_at, s.created_at);
    }

    #[test]
    fn record_round_trips_exactly() {
        let s = session();
        let json = encode(&s).unwrap();
        assert!(!json.contains(&s.token_hash.to_hex()));
        assert_eq!(decode(&json, s.token_hash).unwrap(), s);
        let opened_by_passkey = Session {
            passkey: Some(PasskeyId::from_uuid(Uuid::new_v4())),
            ..s
        };
        let json = encode(&opened_by_passkey).unwrap();
        assert_eq!(
            decode(&json, opened_by_passkey.token_hash).unwrap(),
            opened_by_passkey
        );
    }

    #[test]
    fn corrupt_records_are_other_and_do_not_echo_data() {
        let s = session();
        let json = encode(&s).unwrap();
        let broken = json.replace("ada@example.com", "not an address");
        for bad in [
            "{".to_owned(),
            broken,
            json.replace("\"v\":1", "\"v\":9"),
            r#"{"secret@example.com": 1}"#.to_owned(),
        ] {
            match decode(&bad, s.token_hash) {
                Err(Failure::Other(e)) => {
                    let msg = e.to_string();
                    assert!(!msg.contains("example.com"), "{msg}");
                }
                other => panic!("expected a corrupt-record error, got {other:?}"),
            }
        }
    }

    #[test]
    fn ttl_is_bounded_for_redis() {
        assert_eq!(ttl_millis(Duration::ZERO), 1);
        assert_eq!(ttl_millis(Duration::from_millis(1500)), 1500);
        assert_eq!(ttl_millis(Duration::MAX), ttl_millis(MAX_TTL));
    }
}
