//! Key names. Every key starts with `{prefix}:`; none holds a raw token or e-mail address.

use auth_core::{EmailAddress, OtpPurpose, Quota, RateKey, TokenHash, UserId};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    /// Whether per-user keys wrap the user id in braces, Redis Cluster's hash tag, so that a
    /// user's index and id map live in one slot (and one script may touch both).
    cluster: bool,
}

impl Keys {
    pub(crate) fn new(prefix: &str, cluster: bool) -> Self {
        Self {
            prefix: prefix.to_owned(),
            cluster,
        }
    }

    /// The user id as it appears in per-user key names: `{uuid}` on a cluster.
    fn user_part(&self, user_id: UserId) -> String {
        let id = user_id.as_uuid().hyphenated();
        if self.cluster {
            format!("{{{id}}}")
        } else {
            id.to_string()
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `{prefix}:session:` — the scripts append a token hash to it.
    pub(crate) fn session_prefix(&self) -> String {
        format!("{}:session:", self.prefix)
    }

    /// `{prefix}:session:{sha256(token) hex}` → the session as JSON, expiring with it.
    pub(crate) fn session(&self, token_hash: &TokenHash) -> String {
        format!("{}:session:{}", self.prefix, token_hash.to_hex())
    }

    /// `{prefix}:user-sessions:` — the delete script appends the user id read from a session.
    pub(crate) fn user_sessions_prefix(&self) -> String {
        format!("{}:user-sessions:", self.prefix)
    }

    /// `{prefix}:user-sessions:{user uuid}` → sorted set of `{token hash hex}:{session id}`
    /// scored by expiry (Unix ms, Redis clock). Entries written before session ids were part
    /// of the member are a bare token hash; every script reads both.
    pub(crate) fn user_sessions(&self, user_id: UserId) -> String {
        format!("{}:user-sessions:{}", self.prefix, self.user_part(user_id))
    }

    /// `{prefix}:privilege-window:{session id}` → when the session's administrative privilege
    /// window closes (microseconds since the epoch), expiring with it.
    pub(crate) fn privilege_window(&self, session_id: auth_core::SessionId) -> String {
        format!(
            "{}:privilege-window:{}",
            self.prefix,
            session_id.as_uuid().simple()
        )
    }

    /// `{prefix}:passkey-ceremony:{sha256(handle) hex}` → a sealed passkey ceremony in
    /// flight, expiring with it.
    pub(crate) fn passkey_ceremony(&self, key: &TokenHash) -> String {
        format!("{}:passkey-ceremony:{}", self.prefix, key.to_hex())
    }

    /// `{prefix}:revocation-epoch:{sha256(email) hex}` → counter raised before every sweep
    /// of the address's sessions.
    pub(crate) fn revocation_epoch(&self, email: &EmailAddress) -> String {
        format!("{}:revocation-epoch:{}", self.prefix, email_digest(email))
    }

    /// `{prefix}:devices:{user uuid}` → sorted set of device keys (hex) scored by last
    /// sighting (Unix µs), at most as many as the service keeps.
    pub(crate) fn devices(&self, user_id: UserId) -> String {
        format!("{}:devices:{}", self.prefix, user_id.as_uuid().hyphenated())
    }

    /// `{prefix}:user-session-ids:` — the delete script appends the user id read from a session.
    pub(crate) fn user_session_ids_prefix(&self) -> String {
        format!("{}:user-session-ids:", self.prefix)
    }

    /// `{prefix}:user-session-ids:{user uuid}` → hash session id → token hash (hex), so a
    /// session is found by its public id without reading the user's other sessions.
    pub(crate) fn user_session_ids(&self, user_id: UserId) -> String {
        format!(
            "{}:user-session-ids:{}",
            self.prefix,
            self.user_part(user_id)
        )
    }

    /// `{prefix}:otp:{purpose}:{sha256(email) hex}` → hash {mac, exp, attempts}.
    pub(crate) fn otp(&self, purpose: OtpPurpose, email: &EmailAddress) -> String {
        format!(
            "{}:otp:{}:{}",
            self.prefix,
            purpose.as_str(),
            email_digest(email)
        )
    }

    /// `{prefix}:otp-cooldown:{purpose}:{sha256(email) hex}` → "1" while a mail cooldown runs.
    pub(crate) fn otp_cooldown(&self, purpose: OtpPurpose, email: &EmailAddress) -> String {
        format!(
            "{}:otp-cooldown:{}:{}",
            self.prefix,
            purpose.as_str(),
            email_digest(email)
        )
    }

    /// `{prefix}:rate:{bucket}:{limit}/{period ms}:{sha256(subject) hex}` → GCRA state. The
    /// subject (an IP, an address or both) is hashed: no address appears in a key name.
    pub(crate) fn rate(&self, key: &RateKey, quota: Quota) -> String {
        format!(
            "{}:rate:{}:{}/{}:{}",
            self.prefix,
            key.bucket,
            quota.limit,
            quota.period.as_millis(),
            hex::encode(Sha256::digest(key.subject.canonical().as_bytes()))
        )
    }
}

/// The address is already normalised (lower-cased), so one mailbox has one digest.
fn email_digest(email: &EmailAddress) -> String {
    hex::encode(Sha256::digest(email.as_str().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn keys_carry_the_prefix_and_no_pii() {
        let keys = Keys::new("t", false);
        let email = EmailAddress::parse("Ada@Example.com").unwrap();
        let otp = keys.otp(OtpPurpose::VerifyEmail, &email);
        assert!(otp.starts_with("t:otp:verify:"));
        assert!(!otp.to_lowercase().contains("ada"));
        assert_eq!(otp.len(), "t:otp:verify:".len() + 64);
        let same = EmailAddress::parse("ada@example.com").unwrap();
        assert_eq!(otp, keys.otp(OtpPurpose::VerifyEmail, &same));
        assert_ne!(otp, keys.otp(OtpPurpose::ResetPassword, &email));
        assert_ne!(otp, keys.otp_cooldown(OtpPurpose::VerifyEmail, &email));

        let hash = TokenHash([0xab; 32]);
        assert_eq!(
            keys.session(&hash),
            format!("t:session:{}", "ab".repeat(32))
        );
        assert!(keys.session(&hash).starts_with(&keys.session_prefix()));
        let user = UserId::from_uuid(Uuid::nil());
        assert_eq!(
            keys.user_sessions(user),
            "t:user-sessions:00000000-0000-0000-0000-000000000000"
        );
        assert!(keys
            .user_sessions(user)
            .starts_with(&keys.user_sessions_prefix()));
    }

    #[test]
    fn on_a_cluster_a_users_keys_share_a_hash_tag() {
        let keys = Keys::new("t", true);
        let user = UserId::from_uuid(Uuid::nil());
        let tag = "{00000000-0000-0000-0000-000000000000}";
        assert_eq!(keys.user_sessions(user), format!("t:user-sessions:{tag}"));
        assert_eq!(
            keys.user_session_ids(user),
            format!("t:user-session-ids:{tag}")
        );
        // Keys of one operation on anything else hold a single key: no tag needed.
        assert!(!keys.session(&TokenHash([1; 32])).contains('{'));
    }
}
