#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `rediss://`: the store talks TLS to Redis and verifies the server's certificate and host
//! name against the system's CA store, which `SSL_CERT_FILE` points at a test CA here.
//!
//! One test in its own binary (so its own process): it sets `SSL_CERT_FILE` before any thread
//! reads the environment.

use std::time::Duration;

use auth_core::{SessionStore, SessionStoreError};
use auth_redis::RedisSettings;
use auth_testkit::redis_server::ThrowawayRedis;
use secrecy::SecretString;

#[test]
fn rediss_urls_use_verified_tls() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir().join(format!("auth-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, cert.cert.pem()).unwrap();
    // The only thread so far: nothing else reads the environment while it changes.
    std::env::set_var("SSL_CERT_FILE", &ca_file);
    std::env::remove_var("SSL_CERT_DIR");

    let server = ThrowawayRedis::start_tls(&cert.cert.pem(), &cert.signing_key.serialize_pem());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = |url: String| {
            let mut settings = RedisSettings::new(SecretString::from(url), "tls");
            settings.timeout = Duration::from_secs(3);
            settings.store().unwrap()
        };

        // The certificate names `localhost` and the CA store trusts it.
        let trusted = store(server.tls_url("localhost"));
        trusted.ping().await.expect("a verified TLS connection");
        assert_eq!(
            trusted
                .get(&auth_core::SessionToken::from_bytes([9; 32]).hash())
                .await
                .unwrap(),
            None
        );

        // Same server, but asked for by an address the certificate does not name.
        let wrong_name = store(server.tls_url("127.0.0.1"));
        let err = wrong_name.ping().await.unwrap_err();
        assert!(
            matches!(err, SessionStoreError::Unavailable(_)),
            "a certificate for another name must be refused: {err:?}"
        );

        // Plain Redis protocol on the TLS port: refused, not misread.
        let plain = store(server.tls_url("localhost").replace("rediss://", "redis://"));
        let err = plain.ping().await.unwrap_err();
        assert!(
            matches!(err, SessionStoreError::Unavailable(_)),
            "plain text on a TLS port: {err:?}"
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
