//! What the adapter writes into Redis, and how it reads back what it did not write.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use auth_core::{
    ClientInfo, EmailAddress, OtpMac, OtpPurpose, OtpStore, OtpStoreError, Session, SessionId,
    SessionStore, SessionStoreError, SessionToken, StoredOtp, User, UserId,
};
use auth_redis::RedisSettings;
use auth_testkit::redis_server::ThrowawayRedis;
use chrono::Utc;
use common::TestPrefix;
use redis::AsyncCommands;
use secrecy::SecretString;
use uuid::Uuid;

fn token() -> SessionToken {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    SessionToken::from_bytes(bytes)
}

fn session(email: &str, token: &SessionToken) -> Session {
    let now = Utc::now();
    Session {
        passkey: None,
        id: SessionId::from_uuid(Uuid::new_v4()),
        token_hash: token.hash(),
        user: User {
            id: UserId::from_uuid(Uuid::new_v4()),
            email: EmailAddress::parse(email).unwrap(),
            verified_at: Some(now),
            created_at: now,
            updated_at: now,
        },
        created_at: now,
        expires_at: now + chrono::Duration::hours(1),
        last_seen_at: now,
        client: ClientInfo::new("192.0.2.1".parse().ok(), Some("layout-test")),
    }
}

#[tokio::test]
async fn session_keys_hold_the_token_hash_and_expire_with_the_session() {
    let prefix = TestPrefix::new();
    let store = prefix.store().await;
    let mut raw = prefix.raw().await;
    let token = token();
    let s = session("layout@example.com", &token);
    store.insert(&s, Duration::from_secs(60)).await.unwrap();

    let session_key = format!("{}:session:{}", prefix.prefix, s.token_hash.to_hex());
    let index_key = format!(
        "{}:user-sessions:{}",
        prefix.prefix,
        s.user.id.as_uuid().hyphenated()
    );
    let ids_key = format!(
        "{}:user-session-ids:{}",
        prefix.prefix,
        s.user.id.as_uuid().hyphenated()
    );
    assert_eq!(prefix.keys().await, {
        let mut v = vec![session_key.clone(), index_key.clone(), ids_key.clone()];
        v.sort();
        v
    });
    let id_map: std::collections::HashMap<String, String> = raw.hgetall(&ids_key).await.unwrap();
    assert_eq!(
        id_map,
        std::collections::HashMap::from([(s.id.to_string(), s.token_hash.to_hex())]),
        "session id -> token hash"
    );
    let ids_ttl: i64 = raw.pttl(&ids_key).await.unwrap();
    assert!(
        (55_000..=60_000).contains(&ids_ttl),
        "id map PTTL {ids_ttl}"
    );

    let value: String = raw.get(&session_key).await.unwrap();
    assert!(
        !value.contains(&token.expose()),
        "no raw token in the value"
    );
    assert!(
        !session_key.contains(&token.expose()),
        "no raw token in the key"
    );
    let json: serde_json::Value = serde_json::from_str(&value).unwrap();
    assert_eq!(json["id"], s.id.to_string());
    assert_eq!(json["user"]["id"], s.user.id.to_string());

    let ttl: i64 = raw.pttl(&session_key).await.unwrap();
    assert!((55_000..=60_000).contains(&ttl), "session PTTL {ttl}");
    let index_ttl: i64 = raw.pttl(&index_key).await.unwrap();
    assert!(
        (55_000..=60_000).contains(&index_ttl),
        "index PTTL {index_ttl}"
    );
    let members: Vec<(String, f64)> = raw.zrange_withscores(&index_key, 0, -1).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        members[0].0,
        s.id.to_string(),
        "the member is the session id"
    );
    let now_us = Utc::now().timestamp_micros() as f64;
    assert!(
        (members[0].1 - now_us).abs() < 5_000_000.0,
        "scored by the time of insert (Redis clock, microseconds)"
    );

    // A longer-lived session of the same user stretches the index's life; a shorter one
    // does not shorten it.
    let mut longer = session("layout@example.com", &self::token());
    longer.user = s.user.clone();
    store
        .insert(&longer, Duration::from_secs(600))
        .await
        .unwrap();
    let mut shorter = longer.clone();
    shorter.id = SessionId::from_uuid(Uuid::new_v4());
    shorter.token_hash = self::token().hash();
    store
        .insert(&shorter, Duration::from_secs(5))
        .await
        .unwrap();
    let index_ttl: i64 = raw.pttl(&index_key).await.unwrap();
    assert!(index_ttl > 590_000, "index PTTL {index_ttl}");
}

#[tokio::test]
async fn otp_keys_hold_no_address_code_or_plain_mac_elsewhere() {
    let prefix = TestPrefix::new();
    let store = prefix.store().await;
    let mut raw = prefix.raw().await;
    let email = EmailAddress::parse("Private.Person@Example.com").unwrap();
    let otp = StoredOtp {
        mac: OtpMac([0x5a; 32]),
        expires_at: Utc::now() + chrono::Duration::minutes(10),
        pending_password: None,
        requested_by: None,
    };
    store
        .put(
            OtpPurpose::ResetPassword,
            &email,
            otp,
            3,
            Duration::from_secs(90),
        )
        .await
        .unwrap();
    store
        .claim_send_slot(OtpPurpose::ResetPassword, &email, Duration::from_secs(30))
        .await
        .unwrap();

    let keys = prefix.keys().await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in &keys {
        assert!(!key.to_lowercase().contains("private"), "PII in key {key}");
        assert!(!key.contains("example"), "PII in key {key}");
    }
    let otp_key = keys.iter().find(|k| k.contains(":otp:reset:")).unwrap();
    let fields: std::collections::HashMap<String, String> = raw.hgetall(otp_key).await.unwrap();
    let codes: serde_json::Value = serde_json::from_str(&fields["codes"]).unwrap();
    assert_eq!(codes[0]["mac"], "5a".repeat(32));
    assert_eq!(codes.as_array().unwrap().len(), 1);
    assert_eq!(fields["attempts"], "0");
    assert!(fields.values().all(|v| !v.contains("example")));
    let ttl: i64 = raw.pttl(otp_key).await.unwrap();
    assert!((85_000..=90_000).contains(&ttl), "code PTTL {ttl}");
    let cooldown_key = keys
        .iter()
        .find(|k| k.contains(":otp-cooldown:reset:"))
        .unwrap();
    let ttl: i64 = raw.pttl(cooldown_key).await.unwrap();
    assert!((25_000..=30_000).contains(&ttl), "cooldown PTTL {ttl}");
}

#[tokio::test]
async fn corrupt_records_are_other_not_unavailable() {
    let prefix = TestPrefix::new();
    let store = prefix.store().await;
    let mut raw = prefix.raw().await;

    let token = token();
    let key = format!("{}:session:{}", prefix.prefix, token.hash().to_hex());
    let _: () = raw.set(&key, "{not json").await.unwrap();
    assert!(matches!(
        store.get(&token.hash()).await,
        Err(SessionStoreError::Other(_))
    ));
    assert!(
        store.delete(&token.hash()).await.unwrap(),
        "a corrupt session can still be revoked"
    );

    let user = UserId::from_uuid(Uuid::new_v4());
    let index = format!(
        "{}:user-sessions:{}",
        prefix.prefix,
        user.as_uuid().hyphenated()
    );
    let _: () = raw.set(&index, "not a sorted set").await.unwrap();
    assert!(matches!(
        store.list_for_user(user, None, 10).await,
        Err(SessionStoreError::Other(_))
    ));
    assert!(matches!(
        store.delete_all_for_user(user, None).await,
        Err(SessionStoreError::Other(_))
    ));

    let email = EmailAddress::parse("corrupt@example.com").unwrap();
    store
        .put(
            OtpPurpose::VerifyEmail,
            &email,
            StoredOtp {
                mac: OtpMac([1; 32]),
                expires_at: Utc::now(),
                pending_password: None,
                requested_by: None,
            },
            3,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let otp_key = prefix
        .keys()
        .await
        .into_iter()
        .find(|k| k.contains(":otp:verify:"))
        .unwrap();
    let corrupt = format!(r#"[{{"mac":"{}","exp":"last tuesday"}}]"#, "01".repeat(32));
    let _: () = raw.hset(&otp_key, "codes", corrupt).await.unwrap();
    assert!(matches!(
        store.record_attempt(OtpPurpose::VerifyEmail, &email).await,
        Err(OtpStoreError::Other(_))
    ));
    let _: () = raw.set(&otp_key, "a string, not a hash").await.unwrap();
    assert!(matches!(
        store.record_attempt(OtpPurpose::VerifyEmail, &email).await,
        Err(OtpStoreError::Other(_))
    ));
}

#[tokio::test]
async fn prefixes_keep_stores_apart() {
    let (p1, p2) = (TestPrefix::new(), TestPrefix::new());
    let (s1, s2) = (p1.store().await, p2.store().await);
    let token = token();
    let s = session("apart@example.com", &token);
    s1.insert(&s, Duration::from_secs(60)).await.unwrap();
    assert!(s1.get(&s.token_hash).await.unwrap().is_some());
    assert_eq!(s2.get(&s.token_hash).await.unwrap(), None);
    assert_eq!(s2.delete_all_for_user(s.user.id, None).await.unwrap(), 0);
    assert!(s1.get(&s.token_hash).await.unwrap().is_some());
    assert!(p2.keys().await.is_empty());
}

/// Session validation is the hot path: one GET and nothing else, not even a pool PING.
#[tokio::test]
async fn get_is_a_single_get_command() {
    let server = ThrowawayRedis::start();
    let store = RedisSettings::new(SecretString::from(server.url()), "hot")
        .store()
        .unwrap();
    let token = token();
    let s = session("hot@example.com", &token);
    store.insert(&s, Duration::from_secs(60)).await.unwrap();

    let mut raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .unwrap();
    for _ in 0..10 {
        assert!(store.get(&s.token_hash).await.unwrap().is_some());
    }
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    let commands: Vec<&str> = stats
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .collect();
    assert!(
        commands.iter().any(|c| c.starts_with("get:calls=10,")),
        "{commands:?}"
    );
    // Besides the GETs, only this test's own CONFIG RESETSTAT and INFO may show up.
    let others: Vec<&&str> = commands
        .iter()
        .filter(|c| {
            !["get:", "info:", "config|resetstat:"]
                .iter()
                .any(|p| c.starts_with(p))
        })
        .collect();
    assert!(others.is_empty(), "unexpected commands: {others:?}");
}
