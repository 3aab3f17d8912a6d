//! How many connections one client may hold open (`MAX_CONNECTIONS_PER_CLIENT`).
//!
//! `MAX_CONNECTIONS` bounds a worker's connections for everybody together, so without a
//! bound per client one host could take most of them: open a few hundred connections and
//! pipeline requests whose answers it never reads, and every other client waits for a slot
//! or for the workers. With it, a client (an IPv4 address, or an IPv6 prefix of
//! `IPV6_PREFIX_LEN` bits, as for the rate limits) holds at most its share, and the
//! connection past it is answered at once with a 429 and closed, before anything of it is
//! read.
//!
//! Trusted proxies (`TRUSTED_PROXIES`) are not bounded: every client behind a load balancer
//! arrives from its address, and the proxy is where a per-client bound belongs then.
//!
//! The count is per instance, over all its workers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

/// Default of `MAX_CONNECTIONS_PER_CLIENT`.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;

/// `Retry-After` of the refusal, in seconds.
const RETRY_AFTER_SECS: u64 = 1;

/// How long the refusal may take to write before the connection is simply dropped.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(200);

/// Open connections per client; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct ClientConnections {
    /// At most this many per client; `None`: no bound.
    limit: Option<usize>,
    ipv6_prefix_len: u8,
    trusted_proxies: Arc<[IpAddr]>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// A connection's place in its client's share; given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    client: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ClientConnections {
    /// At most `limit` connections per client (`None`: no bound); IPv6 clients are counted
    /// by their `ipv6_prefix_len`-bit prefix; `trusted_proxies` are not bounded.
    pub fn new(limit: Option<usize>, ipv6_prefix_len: u8, trusted_proxies: &[IpAddr]) -> Self {
        Self {
            limit,
            ipv6_prefix_len,
            trusted_proxies: trusted_proxies.into(),
            open: Arc::default(),
        }
    }

    /// A slot for a connection from `peer`, or `None` when its client already holds its
    /// share. Connections without a bound (no limit, a trusted proxy, an unknown peer) get
    /// `Some` slot that counts nothing.
    pub fn admit(&self, peer: Option<IpAddr>) -> Option<Option<ConnectionSlot>> {
        let (Some(limit), Some(peer)) = (self.limit, peer) else {
            return Some(None);
        };
        let peer = canonical(peer);
        if self.trusted_proxies.contains(&peer) {
            return Some(None);
        }
        let client = auth_core::budget_ip(peer, self.ipv6_prefix_len);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let held = open.entry(client).or_insert(0);
        if *held >= limit {
            return None;
        }
        *held += 1;
        Some(Some(ConnectionSlot {
            client,
            open: Arc::clone(&self.open),
        }))
    }

    /// Connections counted for `peer`'s client right now.
    pub fn held_by(&self, peer: IpAddr) -> usize {
        let client = auth_core::budget_ip(canonical(peer), self.ipv6_prefix_len);
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&client).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.client) {
            *held -= 1;
            if *held == 0 {
                open.remove(&self.client);
            }
        }
    }
}

/// An IPv4 client seen through an IPv4-mapped IPv6 address (a dual-stack listener) counts
/// as itself.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

/// The answer to a connection past its client's share: a 429 with the API's error body,
/// written before the request is read, then the connection is closed.
pub async fn refuse(mut io: TcpStream) {
    let body = serde_json::json!({
        "error": {
            "code": "too_many_requests",
            "message": "this client has too many connections open; close some and try again",
        }
    })
    .to_string();
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         retry-after: {RETRY_AFTER_SECS}\r\ncache-control: no-store\r\nconnection: close\r\n\
         x-content-type-options: nosniff\r\nreferrer-policy: no-referrer\r\n\
         x-frame-options: DENY\r\ncontent-security-policy: frame-ancestors 'none'\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        io.write_all(head.as_bytes()).await?;
        io.write_all(body.as_bytes()).await?;
        io.shutdown().await
    };
    // A client that does not read its answer is simply dropped.
    let _ = tokio::time::timeout(REFUSAL_WRITE_TIMEOUT, write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_it_back() {
        let conns = ClientConnections::new(Some(2), 64, &[]);
        let a = conns.admit(v4(1)).unwrap();
        let b = conns.admit(v4(1)).unwrap();
        assert!(a.is_some() && b.is_some(), "both counted");
        assert!(conns.admit(v4(1)).is_none(), "the third is refused");
        // Another client is not affected.
        let c = conns.admit(v4(2)).unwrap();
        assert_eq!(conns.held_by(IpAddr::from([192, 0, 2, 1])), 2);
        drop(a);
        assert_eq!(conns.held_by(IpAddr::from([192, 0, 2, 1])), 1);
        let d = conns.admit(v4(1)).unwrap();
        drop((b, c, d));
        assert!(conns.open.lock().unwrap().is_empty(), "nothing left behind");
    }

    #[test]
    fn an_ipv6_prefix_is_one_client_and_a_mapped_ipv4_is_itself() {
        let conns = ClientConnections::new(Some(1), 64, &[]);
        let _a = conns.admit(Some("2001:db8::1".parse().unwrap())).unwrap();
        assert!(conns.admit(Some("2001:db8::2".parse().unwrap())).is_none());
        assert!(conns
            .admit(Some("2001:db8:0:1::1".parse().unwrap()))
            .is_some());
        let _b = conns
            .admit(Some("::ffff:192.0.2.9".parse().unwrap()))
            .unwrap();
        assert!(conns.admit(v4(9)).is_none(), "the same client");
    }

    #[test]
    fn trusted_proxies_unknown_peers_and_no_limit_are_not_counted() {
        let proxy = IpAddr::from([10, 0, 0, 1]);
        let conns = ClientConnections::new(Some(1), 64, &[proxy]);
        let slots: Vec<_> = (0..5).map(|_| conns.admit(Some(proxy)).unwrap()).collect();
        assert!(slots.iter().all(Option::is_none));
        assert!(conns.admit(None).unwrap().is_none());
        let unbounded = ClientConnections::new(None, 64, &[]);
        let slots: Vec<_> = (0..5).map(|_| unbounded.admit(v4(1)).unwrap()).collect();
        assert!(slots.iter().all(Option::is_none));
        assert_eq!(unbounded.held_by(IpAddr::from([192, 0, 2, 1])), 0);
    }
}
