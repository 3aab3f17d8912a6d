//! Passkeys: single-use ceremonies, the account a credential belongs to, the counter, and
//! revocation winning over a passkey sign-in.

use super::sessions::capture_insert;
use super::*;
use crate::ports::{
    CeremonyStart, MockPasskeyStore, MockPasskeyVerifier, PasskeyChallengeStore,
    PasskeyChallengeStoreError, PasskeyVerifierError, StoredPasskey, VerifiedAssertion,
};

/// Ceremonies in a map: take removes.
#[derive(Default)]
struct MapCeremonies(Mutex<HashMap<[u8; 32], Vec<u8>>>);

#[async_trait::async_trait]
impl PasskeyChallengeStore for MapCeremonies {
    async fn put(
        &self,
        key: &TokenHash,
        sealed: &[u8],
        _expires_at: DateTime<Utc>,
    ) -> Result<(), PasskeyChallengeStoreError> {
        self.0.lock().unwrap().insert(key.0, sealed.to_vec());
        Ok(())
    }

    async fn take(&self, key: &TokenHash) -> Result<Option<Vec<u8>>, PasskeyChallengeStoreError> {
        Ok(self.0.lock().unwrap().remove(&key.0))
    }
}

const CREDENTIAL_ID: &[u8] = b"ada's credential";

fn mallory_id() -> UserId {
    UserId::from_uuid(Uuid::from_u128(0xBAD))
}

fn ada_passkey(sign_count: u32) -> StoredPasskey {
    StoredPasskey {
        id: PasskeyId::from_uuid(Uuid::from_u128(0x9A55)),
        user_id: ada_id(),
        credential_id: CREDENTIAL_ID.to_vec(),
        credential: b"public key".to_vec(),
        sign_count,
        name: PasskeyName::parse("phone").unwrap(),
        created_at: before(ONE_DAY),
        last_used_at: None,
    }
}

/// A verifier whose sign-in options and identification work; the assertion check is the
/// test's.
fn verifier(claimed_user: UserId) -> MockPasskeyVerifier {
    let mut v = MockPasskeyVerifier::new();
    v.expect_start_discoverable().returning(|| {
        Ok(CeremonyStart {
            options: serde_json::json!({ "challenge": "c" }),
            state: b"state".to_vec(),
        })
    });
    v.expect_identify()
        .returning(move |_| Ok((Some(claimed_user), CREDENTIAL_ID.to_vec())));
    v
}

fn with_passkeys(
    service: AuthService,
    store: MockPasskeyStore,
    verifier: MockPasskeyVerifier,
) -> AuthService {
    service.with_passkeys(Passkeys {
        store: Arc::new(store),
        challenges: Arc::new(MapCeremonies::default()),
        verifier: Arc::new(verifier),
        ceremony_ttl: Duration::from_secs(300),
    })
}

/// The outer fields of a `PublicKeyCredential` for [`CREDENTIAL_ID`] (what the service checks
/// itself; the rest is the verifier's).
fn answer() -> serde_json::Value {
    let id = URL_SAFE_NO_PAD.encode(CREDENTIAL_ID);
    serde_json::json!({ "id": id, "rawId": id, "type": "public-key" })
}

#[test]
fn a_passkey_sign_in_that_loses_to_a_revocation_deletes_its_session() {
    let mut h = Harness::new();
    h.custom_epochs = true;
    let reads = Arc::new(AtomicUsize::new(0));
    let r = reads.clone();
    // Epoch 0 before the credential is read; a revocation raises it before the second read.
    h.sessions
        .expect_revocation_epoch()
        .withf(|e| *e == email())
        .times(2)
        .returning(move |_| Ok(r.fetch_add(1, Ordering::SeqCst) as u64));
    account_by_id(&mut h);
    let inserted = capture_insert(&mut h);
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let d = deleted.clone();
    h.sessions.expect_delete().times(1).returning(move |hash| {
        d.lock().unwrap().push(*hash);
        Ok(true)
    });
    let mut store = MockPasskeyStore::new();
    store
        .expect_find_by_credential_id()
        .returning(|_| Ok(Some(ada_passkey(3))));
    store
        .expect_record_use()
        .returning(|_, _, _, _, _| Ok(true));
    let mut v = verifier(ada_id());
    v.expect_finish_authentication().returning(|_, _, _| {
        Ok(VerifiedAssertion {
            sign_count: 4,
            credential: b"public key".to_vec(),
        })
    });
    let service = with_passkeys(h.service(), store, v);

    let ceremony = block_on(service.begin_passkey_sign_in(&client())).unwrap();
    let result = block_on(service.finish_passkey_sign_in(&ceremony.id, &answer(), client(), None));

    assert!(
        matches!(result, Err(PasskeyLoginError::InvalidCredentials)),
        "{result:?}"
    );
    let inserted = inserted.lock().unwrap();
    assert_eq!(
        deleted.lock().unwrap().as_slice(),
        &[inserted[0].0.token_hash]
    );
}

/// The account is read again after the revocation epoch: a disable that marked the account
/// between the first read (which only names the address) and the epoch read is seen, and no
/// session is opened. Before, the account read first decided, and the epoch read after the
/// disable had raised it matched: the session survived the disable.
#[test]
fn a_passkey_sign_in_racing_a_disable_reads_the_account_after_the_epoch_and_opens_nothing() {
    let mut h = Harness::new();
    let read = Arc::new(AtomicUsize::new(0));
    let r = read.clone();
    h.users
        .expect_find_by_id()
        .withf(|id| *id == ada_id())
        .returning(move |_| {
            let mut account = creds(true);
            // Enabled when first read; disabled by an administrator right after.
            if r.fetch_add(1, Ordering::SeqCst) > 0 {
                account.status.disabled_at = Some(t0());
            }
            Ok(Some(account))
        });
    h.sessions.expect_insert().never();
    let mut store = MockPasskeyStore::new();
    store
        .expect_find_by_credential_id()
        .returning(|_| Ok(Some(ada_passkey(3))));
    store
        .expect_record_use()
        .returning(|_, _, _, _, _| Ok(true));
    let mut v = verifier(ada_id());
    v.expect_finish_authentication().returning(|_, _, _| {
        Ok(VerifiedAssertion {
            sign_count: 4,
            credential: b"public key".to_vec(),
        })
    });
    let service = with_passkeys(h.service(), store, v);

    let ceremony = block_on(service.begin_passkey_sign_in(&client())).unwrap();
    let result = block_on(service.finish_passkey_sign_in(&ceremony.id, &answer(), client(), None));

    assert!(
        matches!(result, Err(PasskeyLoginError::AccountDisabled)),
        "{result:?}"
    );
    assert!(
        read.load(Ordering::SeqCst) >= 2,
        "the account is read again"
    );
}

#[test]
fn a_ceremony_is_single_use_even_when_its_answer_is_refused() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    let mut store = MockPasskeyStore::new();
    store
        .expect_find_by_credential_id()
        .returning(|_| Ok(Some(ada_passkey(0))));
    let mut v = verifier(ada_id());
    v.expect_finish_authentication()
        .times(1)
        .returning(|_, _, _| Err(PasskeyVerifierError::Rejected("bad signature".into())));
    let service = with_passkeys(h.service(), store, v);

    let ceremony = block_on(service.begin_passkey_sign_in(&client())).unwrap();
    let first = block_on(service.finish_passkey_sign_in(&ceremony.id, &answer(), client(), None));
    let again = block_on(service.finish_passkey_sign_in(&ceremony.id, &answer(), client(), None));

    assert!(
        matches!(first, Err(PasskeyLoginError::InvalidCredentials)),
        "{first:?}"
    );
    assert!(
        matches!(again, Err(PasskeyLoginError::InvalidCeremony)),
        "{again:?}"
    );
}

#[test]
fn an_assertion_naming_another_account_than_its_credentials_is_refused_unchecked() {
    let mut h = Harness::new();
    h.users.expect_find_by_id().returning(|id| {
        let mut c = creds(true);
        c.user.id = id;
        Ok(Some(c))
    });
    let mut store = MockPasskeyStore::new();
    store
        .expect_find_by_credential_id()
        .returning(|_| Ok(Some(ada_passkey(0))));
    // Mallory's user handle with Ada's credential: never verified, never recorded.
    let mut v = verifier(mallory_id());
    v.expect_finish_authentication().never();
    store.expect_record_use().never();
    let service = with_passkeys(h.service(), store, v);

    let ceremony = block_on(service.begin_passkey_sign_in(&client())).unwrap();
    let result = block_on(service.finish_passkey_sign_in(&ceremony.id, &answer(), client(), None));

    assert!(
        matches!(result, Err(PasskeyLoginError::InvalidCredentials)),
        "{result:?}"
    );
}

#[test]
fn a_counter_that_does_not_move_forward_is_refused_even_when_the_signature_verifies() {
    for (stored, signed, accepted) in [(5, 5, false), (5, 4, false), (5, 6, true), (0, 0, true)] {
        let mut h = Harness::new();
        account_by_id(&mut h);
        if accepted {
            capture_insert(&mut h);
        }
        let mut store = MockPasskeyStore::new();
        store
            .expect_find_by_credential_id()
            .returning(move |_| Ok(Some(ada_passkey(stored))));
        store
            .expect_record_use()
            .times(usize::from(accepted))
            .withf(move |_, expected, new, _, _| *expected == stored && *new == signed)
            .returning(|_, _, _, _, _| Ok(true));
        store
            .expect_list()
            .returning(move |_| Ok(vec![ada_passkey(signed)]));
        let mut v = verifier(ada_id());
        v.expect_finish_authentication().returning(move |_, _, _| {
            Ok(VerifiedAssertion {
                sign_count: signed,
                credential: b"public key".to_vec(),
            })
        });
        let service = with_passkeys(h.service(), store, v);

        let ceremony = block_on(service.begin_passkey_sign_in(&client())).unwrap();
        let result =
            block_on(service.finish_passkey_sign_in(&ceremony.id, &answer(), client(), None));

        assert_eq!(
            result.is_ok(),
            accepted,
            "stored {stored}, signed {signed}: {result:?}"
        );
    }
}

/// A passkey deleted while a sign-in with it was being checked: the sign-in finds it gone
/// once its session is stored, deletes that session and opens nothing (the deletion's sweep
/// may have run before the session existed).
#[test]
fn a_sign_in_whose_passkey_is_deleted_meanwhile_keeps_no_session() {
    let mut h = Harness::new();
    account_by_id(&mut h);
    let inserted = capture_insert(&mut h);
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let d = deleted.clone();
    h.sessions.expect_delete().times(1).returning(move |hash| {
        d.lock().unwrap().push(*hash);
        Ok(true)
    });
    let mut store = MockPasskeyStore::new();
    store
        .expect_find_by_credential_id()
        .returning(|_| Ok(Some(ada_passkey(1))));
    store
        .expect_record_use()
        .returning(|_, _, _, _, _| Ok(true));
    store.expect_list().times(1).returning(|_| Ok(Vec::new()));
    let mut v = verifier(ada_id());
    v.expect_finish_authentication().returning(|_, _, _| {
        Ok(VerifiedAssertion {
            sign_count: 2,
            credential: b"public key".to_vec(),
        })
    });
    let service = with_passkeys(h.service(), store, v);

    let ceremony = block_on(service.begin_passkey_sign_in(&client())).unwrap();
    let result = block_on(service.finish_passkey_sign_in(&ceremony.id, &answer(), client(), None));

    assert!(
        matches!(result, Err(PasskeyLoginError::InvalidCredentials)),
        "{result:?}"
    );
    let inserted = inserted.lock().unwrap();
    assert_eq!(inserted[0].0.passkey, Some(ada_passkey(1).id));
    assert_eq!(
        deleted.lock().unwrap().as_slice(),
        &[inserted[0].0.token_hash]
    );
}

#[test]
fn a_sign_in_ceremony_works_only_from_the_client_it_was_given_to() {
    let h = Harness::new();
    let store = MockPasskeyStore::new();
    let mut v = verifier(ada_id());
    v.expect_finish_authentication().never();
    let service = with_passkeys(h.service(), store, v);

    let ceremony = block_on(service.begin_passkey_sign_in(&client())).unwrap();
    let elsewhere = ClientInfo::new(
        Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 9))),
        Some("Mozilla/5.0 (X11; Linux x86_64)"),
    );
    let result = block_on(service.finish_passkey_sign_in(&ceremony.id, &answer(), elsewhere, None));

    assert!(
        matches!(result, Err(PasskeyLoginError::InvalidCeremony)),
        "{result:?}"
    );
}

#[test]
fn without_passkeys_every_passkey_operation_says_not_configured() {
    let service = Harness::new().service();
    let result = block_on(service.begin_passkey_sign_in(&client()));
    assert!(
        matches!(result, Err(PasskeyLoginError::NotConfigured)),
        "{result:?}"
    );
    let result = block_on(service.list_passkeys(&current_session()));
    assert!(
        matches!(result, Err(PasskeyError::NotConfigured)),
        "{result:?}"
    );
}
