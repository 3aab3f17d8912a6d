//! [`HashingSlots`]: how many password hashes one client and one account may have in flight.
//!
//! The hasher has a few workers and a bounded queue for everybody. Without a per-client bound,
//! one client sending 200 wrong passwords in parallel fills the queue, and everybody else's
//! login is refused with 503 until the flood stops. With it, that client gets its share (two
//! hashes at a time by default) and is told to retry; the rest of the queue stays for others.
//!
//! The bound is per instance (the counts live in this process): it is about sharing this
//! instance's hasher, not a budget across the fleet (that is what the rate limiter is for).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::domain::email::EmailAddress;
use crate::domain::user::UserId;

/// Who holds a hashing slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Holder {
    /// A client IP (IPv6: its prefix, see [`crate::throttle::budget_ip`]).
    Ip(IpAddr),
    /// An account, by the address a request names.
    Email(EmailAddress),
    /// An account, by its id (inside a session).
    User(UserId),
    /// A known device of an account (a login with a valid device credential).
    Device(crate::domain::device::DeviceId),
}

type Counts = Arc<Mutex<HashMap<Holder, u32>>>;

/// Counts of hashes in flight per holder; see the [module documentation](self).
#[derive(Debug)]
pub(crate) struct HashingSlots {
    limit: u32,
    counts: Counts,
}

/// Slots taken; given back when dropped (also when the request is cancelled).
#[derive(Debug)]
pub(crate) struct Permit {
    holders: Vec<Holder>,
    counts: Counts,
}

impl HashingSlots {
    /// At most `limit` in flight per holder; `0` means no bound.
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            counts: Counts::default(),
        }
    }

    /// Takes one slot of every holder, or none when any of them already has `limit`.
    pub(crate) fn try_acquire(&self, holders: Vec<Holder>) -> Option<Permit> {
        if self.limit == 0 {
            return Some(Permit {
                holders: Vec::new(),
                counts: self.counts.clone(),
            });
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if holders
            .iter()
            .any(|h| counts.get(h).copied().unwrap_or(0) >= self.limit)
        {
            return None;
        }
        for h in &holders {
            *counts.entry(h.clone()).or_insert(0) += 1;
        }
        Some(Permit {
            holders,
            counts: self.counts.clone(),
        })
    }

    #[cfg(test)]
    pub(crate) fn in_flight(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|n| *n as usize)
            .sum()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if self.holders.is_empty() {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        for h in self.holders.drain(..) {
            if let Some(n) = counts.get_mut(&h) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&h);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> Holder {
        Holder::Ip(IpAddr::from([192, 0, 2, n]))
    }

    fn account(n: u128) -> Holder {
        Holder::User(UserId::from_uuid(uuid::Uuid::from_u128(n)))
    }

    #[test]
    fn a_holder_gets_at_most_the_limit_and_slots_come_back_on_drop() {
        let slots = HashingSlots::new(2);
        let a = slots.try_acquire(vec![ip(1), account(1)]).unwrap();
        let b = slots.try_acquire(vec![ip(1), account(2)]).unwrap();
        assert!(slots.try_acquire(vec![ip(1), account(3)]).is_none());
        // Another client on the first account is bounded by the account too.
        let c = slots.try_acquire(vec![ip(2), account(1)]).unwrap();
        assert!(slots.try_acquire(vec![ip(3), account(1)]).is_none());
        // A refusal takes nothing.
        assert_eq!(slots.in_flight(), 6);
        drop(a);
        assert_eq!(slots.in_flight(), 4);
        let d = slots.try_acquire(vec![ip(1), account(3)]).unwrap();
        drop((b, c, d));
        assert_eq!(slots.in_flight(), 0);
        assert!(slots.counts.lock().unwrap().is_empty());
    }

    #[test]
    fn zero_means_no_bound() {
        let slots = HashingSlots::new(0);
        let permits: Vec<_> = (0..100)
            .map(|_| slots.try_acquire(vec![ip(1)]).unwrap())
            .collect();
        assert_eq!(permits.len(), 100);
        assert_eq!(slots.in_flight(), 0);
    }

    #[test]
    fn a_limit_of_one_allows_exactly_one() {
        let slots = HashingSlots::new(1);
        let a = slots.try_acquire(vec![ip(1)]).unwrap();
        assert!(slots.try_acquire(vec![ip(1)]).is_none());
        drop(a);
        assert!(slots.try_acquire(vec![ip(1)]).is_some());
    }
}
