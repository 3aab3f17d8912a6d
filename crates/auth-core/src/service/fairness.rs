//! [`HashingSlots`]: how many password hashes one client and one account may have in flight,
//! and how many all requests together may.
//!
//! The hasher has a few workers and a bounded queue for everybody. Without a per-client bound,
//! one client sending 200 wrong passwords in parallel fills the queue, and everybody else's
//! login is refused with 503 until the flood stops. With it, that client gets its share (two
//! hashes at a time by default) and is told to retry; the rest of the queue stays for others.
//!
//! The total bound is the hasher's [capacity](crate::PasswordHasher::capacity), counted from a
//! request's admission (before its account lookup) to its answer. Without it, a storm of
//! logins passes the admission while the queue still has room, and every one of them looks up
//! its account before the queue refuses it: the stores are busy with requests that will be
//! refused, and the logins that were let in wait behind them for their session.
//!
//! The bounds are per instance (the counts live in this process): they are about sharing this
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

/// Slots in use: per holder, and in all.
#[derive(Debug, Default)]
struct Ledger {
    per_holder: HashMap<Holder, u32>,
    total: usize,
}

type Shared = Arc<Mutex<Ledger>>;

/// Counts of hashes in flight per holder; see the [module documentation](self).
#[derive(Debug)]
pub(crate) struct HashingSlots {
    limit: u32,
    ledger: Shared,
}

/// Why [`HashingSlots::try_acquire`] gave no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A holder already has its share: that client (or account) should retry later.
    Share,
    /// Requests in flight already fill the hasher's capacity: the hasher is saturated.
    Capacity,
}

/// Slots taken; given back when dropped (also when the request is cancelled).
#[derive(Debug)]
pub(crate) struct Permit {
    holders: Vec<Holder>,
    ledger: Shared,
}

impl HashingSlots {
    /// At most `limit` in flight per holder; `0` means no bound per holder.
    pub(crate) fn new(limit: u32) -> Self {
        Self {
            limit,
            ledger: Shared::default(),
        }
    }

    /// Takes one slot of every holder and one of `capacity` (`None`: no total bound), or
    /// nothing when any of them is used up.
    pub(crate) fn try_acquire(
        &self,
        holders: Vec<Holder>,
        capacity: Option<usize>,
    ) -> Result<Permit, Refusal> {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        if capacity.is_some_and(|c| ledger.total >= c) {
            return Err(Refusal::Capacity);
        }
        let holders = if self.limit == 0 { Vec::new() } else { holders };
        if holders
            .iter()
            .any(|h| ledger.per_holder.get(h).copied().unwrap_or(0) >= self.limit)
        {
            return Err(Refusal::Share);
        }
        for h in &holders {
            *ledger.per_holder.entry(h.clone()).or_insert(0) += 1;
        }
        ledger.total += 1;
        Ok(Permit {
            holders,
            ledger: self.ledger.clone(),
        })
    }

    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let ledger = self.ledger.lock().unwrap();
        let per_holder = ledger.per_holder.values().map(|n| *n as usize).sum();
        (per_holder, ledger.total)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        ledger.total -= 1;
        for h in self.holders.drain(..) {
            if let Some(n) = ledger.per_holder.get_mut(&h) {
                *n -= 1;
                if *n == 0 {
                    ledger.per_holder.remove(&h);
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
        let a = slots.try_acquire(vec![ip(1), account(1)], None).unwrap();
        let b = slots.try_acquire(vec![ip(1), account(2)], None).unwrap();
        let refused = slots.try_acquire(vec![ip(1), account(3)], None);
        assert_eq!(refused.unwrap_err(), Refusal::Share);
        // Another client on the first account is bounded by the account too.
        let c = slots.try_acquire(vec![ip(2), account(1)], None).unwrap();
        assert!(slots.try_acquire(vec![ip(3), account(1)], None).is_err());
        // A refusal takes nothing.
        assert_eq!(slots.held(), (6, 3));
        drop(a);
        assert_eq!(slots.held(), (4, 2));
        let d = slots.try_acquire(vec![ip(1), account(3)], None).unwrap();
        drop((b, c, d));
        assert_eq!(slots.held(), (0, 0));
        assert!(slots.ledger.lock().unwrap().per_holder.is_empty());
    }

    #[test]
    fn zero_means_no_bound_per_holder() {
        let slots = HashingSlots::new(0);
        let permits: Vec<_> = (0..100)
            .map(|_| slots.try_acquire(vec![ip(1)], None).unwrap())
            .collect();
        assert_eq!(permits.len(), 100);
        assert_eq!(slots.held(), (0, 100));
        drop(permits);
        assert_eq!(slots.held(), (0, 0));
    }

    #[test]
    fn a_limit_of_one_allows_exactly_one() {
        let slots = HashingSlots::new(1);
        let a = slots.try_acquire(vec![ip(1)], None).unwrap();
        assert!(slots.try_acquire(vec![ip(1)], None).is_err());
        drop(a);
        assert!(slots.try_acquire(vec![ip(1)], None).is_ok());
    }

    #[test]
    fn all_holders_together_get_at_most_the_capacity() {
        let slots = HashingSlots::new(0);
        let a = slots.try_acquire(vec![ip(1)], Some(2)).unwrap();
        let b = slots.try_acquire(vec![ip(2)], Some(2)).unwrap();
        let refused = slots.try_acquire(vec![ip(3)], Some(2));
        assert_eq!(refused.unwrap_err(), Refusal::Capacity);
        assert_eq!(slots.held(), (0, 2));
        drop(a);
        let c = slots.try_acquire(vec![ip(3)], Some(2)).unwrap();
        // The capacity is read at each call: a larger one lets more in.
        let d = slots.try_acquire(vec![ip(4)], Some(3)).unwrap();
        drop((b, c, d));
        assert_eq!(slots.held(), (0, 0));
    }

    #[test]
    fn a_refusal_for_capacity_takes_no_share() {
        let slots = HashingSlots::new(1);
        let a = slots.try_acquire(vec![ip(1)], Some(1)).unwrap();
        assert_eq!(
            slots.try_acquire(vec![ip(2)], Some(1)).unwrap_err(),
            Refusal::Capacity
        );
        drop(a);
        // ip(2) took nothing when it was refused.
        let b = slots.try_acquire(vec![ip(2)], Some(1)).unwrap();
        assert_eq!(slots.held(), (1, 1));
        drop(b);
    }
}
