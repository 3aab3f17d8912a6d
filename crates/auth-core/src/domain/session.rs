//! Sessions: the bearer secret ([`SessionToken`]), what the store keeps ([`TokenHash`],
//! [`Session`]) and the public handle a person sees ([`SessionId`]).

use std::fmt;
use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::passkey::PasskeyId;
use super::user::User;

/// Length of a token in bytes (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Length of the base64url (unpadded) form of a token.
pub const TOKEN_CHARS: usize = 43;

/// The opaque bearer secret of a session: 256 bits from a CSPRNG, base64url without padding.
///
/// The caller receives it once, at login; the store only ever sees its [`TokenHash`].
/// `Debug` never prints it.
#[derive(Clone)]
pub struct SessionToken([u8; TOKEN_BYTES]);

impl SessionToken {
    /// Wraps raw random bytes (from a [`crate::RandomSource`]).
    pub fn from_bytes(bytes: [u8; TOKEN_BYTES]) -> Self {
        Self(bytes)
    }

    /// Parses the base64url form sent by a client; `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != TOKEN_CHARS {
            return None;
        }
        let mut out = [0u8; TOKEN_BYTES];
        match URL_SAFE_NO_PAD.decode_slice(raw, &mut out) {
            Ok(TOKEN_BYTES) => Some(Self(out)),
            _ => None,
        }
    }

    /// The base64url form, to hand to the client. Handle with care.
    pub fn expose(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// SHA-256 of the token: the only form that is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0).into())
    }
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken([REDACTED])")
    }
}

/// SHA-256 of a [`SessionToken`]. A store dump of these gives no usable token.
#[derive(Clone, Copy, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lower-case hex, for storage keys.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form written by [`Self::to_hex`].
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

impl PartialEq for TokenHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits are enough to tell hashes apart in a test failure.
        write!(f, "TokenHash({}..)", &self.to_hex()[..8])
    }
}

/// The public id of a session, distinct from its token: knowing it grants nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(Uuid);

impl SessionId {
    /// Wraps a UUID.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// Parses the hyphenated UUID form.
    pub fn parse(raw: &str) -> Option<Self> {
        Uuid::parse_str(raw).ok().map(Self)
    }

    /// The UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Who is on the other end of a login, as far as the edge can tell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's IP address.
    pub ip: Option<IpAddr>,
    /// The `User-Agent` header, truncated to [`ClientInfo::MAX_USER_AGENT`] characters.
    pub user_agent: Option<String>,
    /// The languages the client prefers, as an HTTP `Accept-Language` value (at most
    /// [`ClientInfo::MAX_LANGUAGE`] characters, printable ASCII): the language of the mail a
    /// new account's signup sends, and of all its later mail.
    pub language: Option<String>,
    /// The id of the request, for the security history (at most
    /// [`ClientInfo::MAX_REQUEST_ID`] printable ASCII characters).
    pub request_id: Option<String>,
}

impl ClientInfo {
    /// Longest request id kept, in characters.
    pub const MAX_REQUEST_ID: usize = 64;
    /// Longest user agent kept, in characters.
    pub const MAX_USER_AGENT: usize = 256;
    /// Longest language preference kept, in characters.
    pub const MAX_LANGUAGE: usize = 128;

    /// Builds client info, bounding and sanitising the user agent.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(Self::MAX_USER_AGENT)
                    .collect::<String>()
            })
            .filter(|ua| !ua.is_empty());
        Self {
            ip,
            user_agent,
            language: None,
            request_id: None,
        }
    }

    /// With the id of the request (say, the one the access log shows): only printable ASCII
    /// is kept, at most [`ClientInfo::MAX_REQUEST_ID`] characters of it; nothing if empty.
    pub fn with_request_id(mut self, id: Option<&str>) -> Self {
        self.request_id = id
            .map(|raw| {
                raw.chars()
                    .filter(char::is_ascii_graphic)
                    .take(Self::MAX_REQUEST_ID)
                    .collect::<String>()
            })
            .filter(|id| !id.is_empty());
        self
    }

    /// With the client's language preference (an `Accept-Language` value): only printable
    /// ASCII is kept, at most [`ClientInfo::MAX_LANGUAGE`] characters of it; nothing if empty.
    pub fn with_language(mut self, accept_language: Option<&str>) -> Self {
        self.language = accept_language
            .map(|raw| {
                raw.chars()
                    .filter(|c| c.is_ascii_graphic() || *c == ' ')
                    .take(Self::MAX_LANGUAGE)
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
            .filter(|l| !l.is_empty());
        self
    }
}

/// Whether a session may be used from another client than the one that opened it. With a
/// binding on, a session used from a client that does not match is ended (see
/// `AuthService::authenticate_from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionBinding {
    /// Any client may use the session (the default).
    #[default]
    Off,
    /// Only a client with the same `User-Agent` as at login.
    UserAgent,
    /// Only a client in the same network as at login: the first `ipv4_prefix` bits of an
    /// IPv4 address, `ipv6_prefix` bits of an IPv6 address.
    IpPrefix {
        /// Leading bits of an IPv4 address compared (0 to 32).
        ipv4_prefix: u8,
        /// Leading bits of an IPv6 address compared (0 to 128).
        ipv6_prefix: u8,
    },
}

impl SessionBinding {
    /// Whether a session opened by `opened_by` may be used by `now`. A client whose address
    /// or user agent is unknown matches only another such client.
    pub fn allows(&self, opened_by: &ClientInfo, now: &ClientInfo) -> bool {
        match *self {
            Self::Off => true,
            Self::UserAgent => opened_by.user_agent == now.user_agent,
            Self::IpPrefix {
                ipv4_prefix,
                ipv6_prefix,
            } => {
                let cut = |ip: Option<IpAddr>| {
                    ip.map(|ip| crate::ports::TruncatedIp::new(ip, ipv4_prefix, ipv6_prefix))
                };
                cut(opened_by.ip) == cut(now.ip)
            }
        }
    }
}

/// A server-side session as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Public id.
    pub id: SessionId,
    /// SHA-256 of the bearer token.
    pub token_hash: TokenHash,
    /// The owner, as of login. Kept in the session so that validating a session is one
    /// store lookup; every change that matters (password change or reset) revokes sessions.
    pub user: User,
    /// Login time.
    pub created_at: DateTime<Utc>,
    /// End of the absolute lifetime.
    pub expires_at: DateTime<Utc>,
    /// Last use as recorded (login time at first). The service records a use only when the
    /// last record is older than a small part of the idle timeout, so this may lag the real
    /// last use by up to that much (see [`crate::AuthConfig::session_idle_timeout`]).
    pub last_seen_at: DateTime<Utc>,
    /// Client at login.
    pub client: ClientInfo,
    /// The passkey that opened it (a sign-in without a password, or a passkey as the second
    /// step); `None` for every other way in. Deleting that passkey ends the session.
    pub passkey: Option<PasskeyId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_language_preference_is_bounded_printable_ascii() {
        let lang = |raw: Option<&str>| ClientInfo::default().with_language(raw).language;
        assert_eq!(
            lang(Some(" de-CH, de;q=0.9 ")),
            Some("de-CH, de;q=0.9".into())
        );
        assert_eq!(
            lang(Some("de\u{0}\r\nX-Evil: 1")),
            Some("deX-Evil: 1".into())
        );
        assert_eq!(lang(Some("ñ")), None);
        assert_eq!(lang(Some("   ")), None);
        assert_eq!(lang(None), None);
        let long = "a".repeat(ClientInfo::MAX_LANGUAGE + 1);
        assert_eq!(
            lang(Some(&long)).map(|l| l.len()),
            Some(ClientInfo::MAX_LANGUAGE)
        );
        let exact = "a".repeat(ClientInfo::MAX_LANGUAGE);
        assert_eq!(lang(Some(&exact)), Some(exact.clone()));
    }

    #[test]
    fn a_binding_allows_only_the_matching_client() {
        let at = |ip: [u8; 4], ua: &str| ClientInfo::new(Some(IpAddr::from(ip)), Some(ua));
        let login = at([203, 0, 113, 7], "Firefox");
        let same_net = at([203, 0, 113, 200], "Firefox");
        let other_net = at([203, 0, 114, 7], "Firefox");
        let other_ua = at([203, 0, 113, 7], "curl");
        let by_ip = SessionBinding::IpPrefix {
            ipv4_prefix: 24,
            ipv6_prefix: 64,
        };
        assert!(SessionBinding::Off.allows(&login, &other_ua));
        assert!(SessionBinding::UserAgent.allows(&login, &other_net));
        assert!(!SessionBinding::UserAgent.allows(&login, &other_ua));
        assert!(by_ip.allows(&login, &same_net));
        assert!(by_ip.allows(&login, &other_ua));
        assert!(!by_ip.allows(&login, &other_net));
        assert!(!by_ip.allows(&login, &ClientInfo::default()));
        assert!(!SessionBinding::UserAgent.allows(&login, &ClientInfo::default()));
        let v6 = |s: &str| ClientInfo::new(Some(s.parse().unwrap()), None);
        assert!(by_ip.allows(&v6("2001:db8::1"), &v6("2001:db8::ffff:1")));
        assert!(!by_ip.allows(&v6("2001:db8::1"), &v6("2001:db8:0:1::1")));
    }

    #[test]
    fn token_round_trips_and_hides_itself() {
        let t = SessionToken::from_bytes([0xAB; 32]);
        let s = t.expose();
        assert_eq!(s.len(), TOKEN_CHARS);
        let back = SessionToken::parse(&s).unwrap();
        assert_eq!(back.hash(), t.hash());
        assert!(!format!("{t:?}").contains(&s));
    }

    #[test]
    fn malformed_tokens_rejected() {
        assert!(SessionToken::parse("").is_none());
        assert!(SessionToken::parse(&"A".repeat(42)).is_none());
        assert!(SessionToken::parse(&"A".repeat(44)).is_none());
        assert!(SessionToken::parse(&format!("{}=", "A".repeat(42))).is_none());
        assert!(SessionToken::parse(&"+".repeat(43)).is_none());
    }

    #[test]
    fn user_agent_is_bounded_and_clean() {
        let c = ClientInfo::new(None, Some(&format!("a\r\nb{}", "x".repeat(1000))));
        let ua = c.user_agent.unwrap();
        assert!(ua.starts_with("ab"));
        assert_eq!(ua.chars().count(), ClientInfo::MAX_USER_AGENT);
    }

    proptest! {
        #[test]
        fn every_token_round_trips(bytes in any::<[u8; 32]>()) {
            let t = SessionToken::from_bytes(bytes);
            let parsed = SessionToken::parse(&t.expose()).unwrap();
            prop_assert_eq!(parsed.hash(), t.hash());
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            if let Some(t) = SessionToken::parse(&s) {
                prop_assert_eq!(t.expose(), s);
            }
        }

        #[test]
        fn token_hash_hex_round_trips(bytes in any::<[u8; 32]>()) {
            let h = TokenHash(bytes);
            prop_assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        }
    }
}
