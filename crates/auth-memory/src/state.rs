//! The whole state behind the store's lock, with an ordered index of deadlines.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use auth_core::{EmailAddress, OtpPurpose, Session, SessionId, StoredOtp, UserId};

use crate::MemoryStats;

/// Longest TTL honoured (as in the Redis adapter): far beyond any real lifetime, far below the
/// point where `Instant` arithmetic overflows.
const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// A point in time plus a sequence number, so two entries with the same deadline stay distinct
/// in the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    seq: u64,
}

/// (purpose, address): the key of a code and of a cooldown.
pub(crate) type OtpKey = (OtpPurpose, EmailAddress);

/// What a deadline in the index belongs to.
#[derive(Debug, Clone)]
enum Expiring {
    Session([u8; 32]),
    Code(OtpKey),
    Cooldown(OtpKey),
    Rate(String),
}

#[derive(Debug)]
pub(crate) struct SessionEntry {
    pub(crate) session: Session,
    pub(crate) deadline: Deadline,
    /// Where it sits in its user's index: set at insert, kept by touches.
    pub(crate) position: i64,
}

/// A user's sessions by (position, session id) → token hash: newest last.
pub(crate) type UserIndex = BTreeMap<(i64, SessionId), [u8; 32]>;

#[derive(Debug)]
pub(crate) struct CodeEntry {
    /// The live codes, oldest first.
    pub(crate) codes: Vec<StoredOtp>,
    pub(crate) attempts: u32,
    pub(crate) deadline: Deadline,
}

/// An account's devices: each key with its last sighting.
pub(crate) type DeviceList = Vec<(auth_core::DeviceKey, chrono::DateTime<chrono::Utc>)>;

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Sessions by the SHA-256 of their token.
    pub(crate) sessions: HashMap<[u8; 32], SessionEntry>,
    /// Each user's sessions in insertion order; a user with none has no entry.
    pub(crate) by_user: HashMap<UserId, UserIndex>,
    pub(crate) codes: HashMap<OtpKey, CodeEntry>,
    pub(crate) cooldowns: HashMap<OtpKey, Deadline>,
    /// GCRA budgets: the theoretical arrival time is the deadline (a full budget has no entry).
    pub(crate) rates: HashMap<String, Deadline>,
    /// Revocation epochs by address (kept for the life of the process: one small entry per
    /// address whose sessions were ever revoked).
    pub(crate) epochs: HashMap<EmailAddress, u64>,
    /// Administrative privilege windows by session id: when each closes, and when its entry
    /// may be dropped.
    pub(crate) privileges: HashMap<auth_core::SessionId, (chrono::DateTime<chrono::Utc>, Instant)>,
    /// Each account's devices: key, last sighting, and when the list may be dropped (bounded
    /// per account by the caller's `keep`).
    pub(crate) devices: HashMap<UserId, (DeviceList, Instant)>,
    /// Every live deadline, oldest first: the sweeper pops from the front.
    expiries: BTreeMap<Deadline, Expiring>,
    next_seq: u64,
    /// The position of the last session inserted (see [`auth_core::SessionCursor`]).
    last_position: i64,
}

impl State {
    /// `now + ttl`, clamped to [`MAX_TTL`].
    pub(crate) fn deadline_after(now: Instant, ttl: Duration) -> Instant {
        // Unreachable fallback: `now + MAX_TTL` fits for any clock that has run < 400 years.
        now.checked_add(ttl.min(MAX_TTL)).unwrap_or(now)
    }

    fn schedule(&mut self, at: Instant, what: Expiring) -> Deadline {
        self.next_seq = self.next_seq.wrapping_add(1);
        let deadline = Deadline {
            at,
            seq: self.next_seq,
        };
        self.expiries.insert(deadline, what);
        deadline
    }

    // --- sessions ---

    /// Stores a session (replacing one with the same token hash) and indexes it.
    /// A session stored again under the same hash (a touch) keeps its place in the index.
    pub(crate) fn insert_session(&mut self, session: Session, expires: Instant) {
        let hash = session.token_hash.0;
        let position = match self.remove_session(&hash) {
            Some(old) => old.position,
            None => {
                self.last_position = self.last_position.saturating_add(1);
                self.last_position
            }
        };
        let deadline = self.schedule(expires, Expiring::Session(hash));
        self.by_user
            .entry(session.user.id)
            .or_default()
            .insert((position, session.id), hash);
        self.sessions.insert(
            hash,
            SessionEntry {
                session,
                deadline,
                position,
            },
        );
    }

    /// The session with this hash if it is live at `now`; an expired one is removed.
    pub(crate) fn live_session(&mut self, hash: &[u8; 32], now: Instant) -> Option<&Session> {
        let expired = self.sessions.get(hash)?.deadline.at <= now;
        if expired {
            self.remove_session(hash);
            return None;
        }
        self.sessions.get(hash).map(|e| &e.session)
    }

    /// Removes a session, its index entry and its deadline.
    pub(crate) fn remove_session(&mut self, hash: &[u8; 32]) -> Option<SessionEntry> {
        let entry = self.sessions.remove(hash)?;
        self.expiries.remove(&entry.deadline);
        let user = entry.session.user.id;
        if let Some(index) = self.by_user.get_mut(&user) {
            index.remove(&(entry.position, entry.session.id));
            if index.is_empty() {
                self.by_user.remove(&user);
            }
        }
        Some(entry)
    }

    /// Token hashes indexed under the user, oldest first, after removing the expired ones.
    pub(crate) fn live_hashes_of(&mut self, user: UserId, now: Instant) -> Vec<[u8; 32]> {
        let hashes: Vec<[u8; 32]> = self
            .by_user
            .get(&user)
            .map(|index| index.values().copied().collect())
            .unwrap_or_default();
        hashes
            .into_iter()
            .filter(|hash| self.live_session(hash, now).is_some())
            .collect()
    }

    // --- codes ---

    /// Adds a code, keeping the first and the `keep - 1` newest; the attempt counter starts over
    /// and the entry
    /// lives until `expires`.
    pub(crate) fn put_code(
        &mut self,
        key: OtpKey,
        otp: StoredOtp,
        keep: usize,
        expires: Instant,
        now: Instant,
    ) {
        let mut codes = match self.live_code(&key, now) {
            Some(_) => self.remove_code(&key).map(|e| e.codes).unwrap_or_default(),
            None => Vec::new(),
        };
        codes.push(otp);
        // The first code stays; the oldest of the others make room.
        let keep = keep.max(1);
        while codes.len() > keep {
            codes.remove(if keep >= 2 { 1 } else { 0 });
        }
        let deadline = self.schedule(expires, Expiring::Code(key.clone()));
        self.codes.insert(
            key,
            CodeEntry {
                codes,
                attempts: 0,
                deadline,
            },
        );
    }

    /// The code under `key` if it is still retained at `now`; an expired one is removed.
    pub(crate) fn live_code(&mut self, key: &OtpKey, now: Instant) -> Option<&mut CodeEntry> {
        let expired = self.codes.get(key)?.deadline.at <= now;
        if expired {
            self.remove_code(key);
            return None;
        }
        self.codes.get_mut(key)
    }

    pub(crate) fn remove_code(&mut self, key: &OtpKey) -> Option<CodeEntry> {
        let entry = self.codes.remove(key)?;
        self.expiries.remove(&entry.deadline);
        Some(entry)
    }

    // --- cooldowns ---

    /// The end of the running cooldown, if one runs at `now`; an expired one is removed.
    pub(crate) fn live_cooldown(&mut self, key: &OtpKey, now: Instant) -> Option<Instant> {
        let deadline = *self.cooldowns.get(key)?;
        if deadline.at <= now {
            self.cooldowns.remove(key);
            self.expiries.remove(&deadline);
            return None;
        }
        Some(deadline.at)
    }

    pub(crate) fn start_cooldown(&mut self, key: OtpKey, until: Instant) {
        if let Some(old) = self.cooldowns.remove(&key) {
            self.expiries.remove(&old);
        }
        let deadline = self.schedule(until, Expiring::Cooldown(key.clone()));
        self.cooldowns.insert(key, deadline);
    }

    // --- rate limits ---

    /// The theoretical arrival time of a budget, if it is not full at `now`.
    pub(crate) fn live_rate(&mut self, key: &str, now: Instant) -> Option<Instant> {
        let deadline = *self.rates.get(key)?;
        if deadline.at <= now {
            self.remove_rate(key);
            return None;
        }
        Some(deadline.at)
    }

    pub(crate) fn set_rate(&mut self, key: String, tat: Instant) {
        self.remove_rate(&key);
        let deadline = self.schedule(tat, Expiring::Rate(key.clone()));
        self.rates.insert(key, deadline);
    }

    pub(crate) fn remove_rate(&mut self, key: &str) {
        if let Some(old) = self.rates.remove(key) {
            self.expiries.remove(&old);
        }
    }

    // --- housekeeping ---

    /// Removes up to `limit` entries whose deadline is at or before `now`; returns how many.
    pub(crate) fn sweep(&mut self, now: Instant, limit: usize) -> usize {
        let mut removed = 0;
        while removed < limit {
            let Some(entry) = self.expiries.first_entry() else {
                break;
            };
            if entry.key().at > now {
                break;
            }
            let (deadline, what) = entry.remove_entry();
            // Every removal path drops the deadline too, so the entry found here is the one
            // this deadline was scheduled for; the comparison only guards against a mix-up.
            match what {
                Expiring::Session(hash) => {
                    if self.sessions.get(&hash).map(|e| e.deadline) == Some(deadline) {
                        self.remove_session(&hash);
                    }
                }
                Expiring::Code(key) => {
                    if self.codes.get(&key).map(|e| e.deadline) == Some(deadline) {
                        self.codes.remove(&key);
                    }
                }
                Expiring::Cooldown(key) => {
                    if self.cooldowns.get(&key) == Some(&deadline) {
                        self.cooldowns.remove(&key);
                    }
                }
                Expiring::Rate(key) => {
                    if self.rates.get(&key) == Some(&deadline) {
                        self.rates.remove(&key);
                    }
                }
            }
            removed += 1;
        }
        removed
    }

    pub(crate) fn stats(&self) -> MemoryStats {
        MemoryStats {
            sessions: self.sessions.len(),
            indexed_users: self.by_user.len(),
            codes: self.codes.len(),
            cooldowns: self.cooldowns.len(),
            rate_limits: self.rates.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use auth_core::OtpMac;

    fn key(n: u8) -> OtpKey {
        (
            OtpPurpose::VerifyEmail,
            EmailAddress::parse(&format!("u{n}@example.com")).unwrap(),
        )
    }

    fn otp() -> StoredOtp {
        StoredOtp {
            mac: OtpMac([1; 32]),
            expires_at: chrono::Utc::now(),
            pending_password: None,
            requested_by: None,
        }
    }

    #[test]
    fn sweep_removes_only_what_expired_and_respects_the_limit() {
        let mut s = State::default();
        let now = Instant::now();
        for n in 0..5 {
            s.put_code(
                key(n),
                otp(),
                3,
                now + Duration::from_secs(u64::from(n)),
                now,
            );
        }
        s.start_cooldown(key(9), now + Duration::from_secs(100));
        assert_eq!(s.sweep(now + Duration::from_secs(3), 2), 2);
        assert_eq!(s.sweep(now + Duration::from_secs(3), 10), 2);
        assert_eq!(s.codes.len(), 1);
        assert_eq!(s.cooldowns.len(), 1);
        assert_eq!(s.expiries.len(), 2, "no deadline outlives its entry");
    }

    #[test]
    fn replacing_an_entry_drops_its_old_deadline() {
        let mut s = State::default();
        let now = Instant::now();
        s.put_code(key(1), otp(), 3, now + Duration::from_secs(1), now);
        s.put_code(key(1), otp(), 3, now + Duration::from_secs(100), now);
        assert_eq!(
            s.codes[&key(1)].codes.len(),
            2,
            "a second code joins the first"
        );
        s.start_cooldown(key(1), now + Duration::from_secs(1));
        s.start_cooldown(key(1), now + Duration::from_secs(100));
        assert_eq!(s.expiries.len(), 2);
        assert_eq!(s.sweep(now + Duration::from_secs(50), 10), 0);
        assert_eq!(s.stats().total(), 2);
    }

    #[test]
    fn huge_ttls_are_clamped() {
        let now = Instant::now();
        assert_eq!(
            State::deadline_after(now, Duration::MAX),
            now + MAX_TTL,
            "no overflow"
        );
    }
}
