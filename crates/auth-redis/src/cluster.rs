//! The session operations on a Redis Cluster.
//!
//! A session's key is found by its token hash alone (that keeps `get` one command), so it lives
//! in its own slot, while a user's index and id map share the user's hash tag. No script can
//! touch both, so each operation runs as steps, each atomic in its own slot, in an order that
//! keeps the rule revocation depends on: **a stored session is always in its user's index.**
//!
//! - insert: index the session (user's slot), end the sessions beyond the cap (their slots),
//!   drop their entries, then store the session. A failure after the first step leaves an
//!   entry without a session, which the next listing or logout everywhere drops.
//! - touch: stretch the index's life first, then rewrite the session only if it is still
//!   there (`SET XX`): a revoked session is never brought back.
//! - delete, delete by id, logout everywhere: end the session(s) first, then drop the entries.
//!
//! A login racing a logout everywhere is covered by the revocation epoch, as on one server.

use std::time::Duration;

use auth_core::{Session, SessionCursor, SessionId, SessionPage, TokenHash, UserId};
use futures::future::join_all;

use crate::pool::{Failure, Request, Retry};
use crate::session::{cursor_of, decode, encode, ttl_millis, DELETE_ALL_STEP};
use crate::RedisStore;

/// One entry of a user's index as the cluster scripts return it.
struct Entry {
    member: String,
    token: Option<TokenHash>,
}

fn entries(flat: &[String]) -> Result<Vec<Entry>, Failure> {
    flat.chunks(2)
        .map(|pair| match pair {
            [member, token] => Ok(Entry {
                member: member.clone(),
                token: if token.is_empty() {
                    None
                } else {
                    Some(
                        TokenHash::from_hex(token)
                            .ok_or_else(|| Failure::corrupt("session index", "not a token hash"))?,
                    )
                },
            }),
            _ => Err(Failure::corrupt("session index", "odd reply length")),
        })
        .collect()
}

fn hyphenated(id: impl Into<uuid::Uuid>) -> String {
    id.into().hyphenated().to_string()
}

impl RedisStore {
    pub(crate) async fn cluster_insert(
        &self,
        session: &Session,
        ttl: Duration,
    ) -> Result<(), Failure> {
        let keys = &self.inner.keys;
        let user = session.user.id;
        let mut call = self.inner.scripts.cluster_index_add.prepare_invoke();
        call.key(keys.user_sessions(user))
            .key(keys.user_session_ids(user))
            .arg(ttl_millis(ttl))
            .arg(session.token_hash.to_hex())
            .arg(hyphenated(session.id.as_uuid()))
            .arg(self.inner.max_sessions_per_user);
        // Indexing twice is harmless (same member, a later position).
        let beyond: Vec<String> = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Idempotent)
            .await?;
        let beyond = entries(&beyond)?;
        if !beyond.is_empty() {
            self.end_then_drop(user, &beyond, false).await?;
        }
        let mut set = redis::cmd("SET");
        set.arg(keys.session(&session.token_hash))
            .arg(encode(session)?)
            .arg("PX")
            .arg(ttl_millis(ttl));
        let _: () = self
            .inner
            .exec
            .run(Request::Cmd(&set), Retry::Never)
            .await?;
        Ok(())
    }

    pub(crate) async fn cluster_touch(
        &self,
        session: &Session,
        ttl: Duration,
    ) -> Result<bool, Failure> {
        let keys = &self.inner.keys;
        let user = session.user.id;
        let mut call = self.inner.scripts.cluster_index_touch.prepare_invoke();
        call.key(keys.user_sessions(user))
            .key(keys.user_session_ids(user))
            .arg(ttl_millis(ttl))
            .arg(session.token_hash.to_hex())
            .arg(hyphenated(session.id.as_uuid()));
        let _: i64 = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Idempotent)
            .await?;
        let mut set = redis::cmd("SET");
        set.arg(keys.session(&session.token_hash))
            .arg(encode(session)?)
            .arg("XX")
            .arg("PX")
            .arg(ttl_millis(ttl));
        let written: Option<String> = self
            .inner
            .exec
            .run(Request::Cmd(&set), Retry::Idempotent)
            .await?;
        Ok(written.is_some())
    }

    pub(crate) async fn cluster_list(
        &self,
        user: UserId,
        after: Option<SessionCursor>,
        limit: usize,
    ) -> Result<SessionPage, Failure> {
        let keys = &self.inner.keys;
        let mut call = self.inner.scripts.cluster_index_page.prepare_invoke();
        call.key(keys.user_sessions(user))
            .key(keys.user_session_ids(user))
            .arg("page");
        match after {
            Some(c) => call.arg(c.position()).arg(hyphenated(c.id().as_uuid())),
            None => call.arg("").arg(""),
        };
        call.arg(limit);
        let flat: Vec<String> = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Idempotent)
            .await?;
        let [next_position, next_member, rest @ ..] = flat.as_slice() else {
            return Err(Failure::corrupt("session index", "short reply"));
        };
        let next = if next_position.is_empty() {
            None
        } else {
            Some(cursor_of(next_position, next_member)?)
        };
        let window = entries(rest)?;
        let reads = window.iter().map(|e| async move {
            let Some(token) = e.token else {
                return Ok(None);
            };
            let mut get = redis::cmd("GET");
            get.arg(keys.session(&token));
            let json: Option<String> = self
                .inner
                .exec
                .run(Request::Cmd(&get), Retry::Idempotent)
                .await?;
            json.map(|j| decode(&j, token)).transpose()
        });
        let mut sessions = Vec::with_capacity(window.len());
        let mut gone = Vec::new();
        for (entry, read) in window.iter().zip(join_all(reads).await) {
            match read? {
                Some(s) => sessions.push(s),
                None => gone.push(entry.member.clone()),
            }
        }
        if !gone.is_empty() {
            self.drop_entries(user, &gone).await?;
        }
        Ok(SessionPage { sessions, next })
    }

    pub(crate) async fn cluster_delete(&self, token_hash: &TokenHash) -> Result<bool, Failure> {
        let mut call = self.inner.scripts.cluster_session_take.prepare_invoke();
        call.key(self.inner.keys.session(token_hash));
        let record: Option<String> = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Never)
            .await?;
        let Some(json) = record else {
            return Ok(false);
        };
        // An unreadable record is still revoked; its entry goes when a listing meets it.
        if let Ok(s) = decode(&json, *token_hash) {
            let member = hyphenated(s.id.as_uuid());
            let old = format!("{}:{member}", token_hash.to_hex());
            self.drop_entries(s.user.id, &[member, old]).await?;
        }
        Ok(true)
    }

    pub(crate) async fn cluster_delete_by_id(
        &self,
        user: UserId,
        id: SessionId,
    ) -> Result<bool, Failure> {
        let keys = &self.inner.keys;
        let member = hyphenated(id.as_uuid());
        let mut hget = redis::cmd("HGET");
        hget.arg(keys.user_session_ids(user)).arg(&member);
        let token: Option<String> = self
            .inner
            .exec
            .run(Request::Cmd(&hget), Retry::Idempotent)
            .await?;
        let Some(token) = token.as_deref().and_then(TokenHash::from_hex) else {
            return Ok(false);
        };
        let entry = Entry {
            member: member.clone(),
            token: Some(token),
        };
        let ended = self
            .end_sessions(user, Some(&member), &[entry], false)
            .await?;
        let old = format!("{}:{member}", token.to_hex());
        self.drop_entries(user, &[member, old]).await?;
        Ok(ended == 1)
    }

    pub(crate) async fn cluster_delete_all(
        &self,
        user: UserId,
        keep: Option<SessionId>,
    ) -> Result<u64, Failure> {
        let keys = &self.inner.keys;
        let keep = keep.map_or_else(String::new, |id| hyphenated(id.as_uuid()));
        let mut revoked = 0;
        loop {
            let mut call = self.inner.scripts.cluster_index_page.prepare_invoke();
            call.key(keys.user_sessions(user))
                .key(keys.user_session_ids(user))
                .arg("oldest")
                .arg("")
                .arg(&keep)
                .arg(DELETE_ALL_STEP);
            let flat: Vec<String> = self
                .inner
                .exec
                .run(Request::Script(&call), Retry::Idempotent)
                .await?;
            let [left, _, rest @ ..] = flat.as_slice() else {
                return Err(Failure::corrupt("session index", "short reply"));
            };
            let batch = entries(rest)?;
            if batch.is_empty() {
                return Ok(revoked);
            }
            revoked += self.end_then_drop(user, &batch, true).await?;
            if left.parse::<u64>().unwrap_or(0) <= batch.len() as u64 {
                return Ok(revoked);
            }
        }
    }

    /// Ends the sessions of these entries (each in its own slot), then drops the entries.
    async fn end_then_drop(
        &self,
        user: UserId,
        batch: &[Entry],
        unreadable_too: bool,
    ) -> Result<u64, Failure> {
        let ended = self.end_sessions(user, None, batch, unreadable_too).await?;
        let members: Vec<String> = batch.iter().map(|e| e.member.clone()).collect();
        self.drop_entries(user, &members).await?;
        Ok(ended)
    }

    /// Ends each entry's session if it belongs to `user` (and has `id`, when given); returns
    /// how many were ended. The first failure is returned after every step was tried.
    async fn end_sessions(
        &self,
        user: UserId,
        id: Option<&str>,
        batch: &[Entry],
        unreadable_too: bool,
    ) -> Result<u64, Failure> {
        let user_id = hyphenated(user.as_uuid());
        let ends = batch.iter().filter_map(|e| e.token).map(|token| {
            let user_id = &user_id;
            async move {
                let mut call = self.inner.scripts.cluster_session_end.prepare_invoke();
                call.key(self.inner.keys.session(&token))
                    .arg(user_id)
                    .arg(id.unwrap_or(""))
                    .arg(if unreadable_too { "1" } else { "0" });
                self.inner
                    .exec
                    .run::<i64>(Request::Script(&call), Retry::Idempotent)
                    .await
            }
        });
        let mut ended = 0;
        for result in join_all(ends).await {
            ended += u64::try_from(result?).unwrap_or(0);
        }
        Ok(ended)
    }

    async fn drop_entries(&self, user: UserId, members: &[String]) -> Result<(), Failure> {
        let keys = &self.inner.keys;
        let mut call = self.inner.scripts.cluster_index_drop.prepare_invoke();
        call.key(keys.user_sessions(user))
            .key(keys.user_session_ids(user));
        for m in members {
            call.arg(m);
        }
        let _: i64 = self
            .inner
            .exec
            .run(Request::Script(&call), Retry::Idempotent)
            .await?;
        Ok(())
    }
}
