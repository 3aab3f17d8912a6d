#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use auth_argon2::{Argon2Hasher, Argon2Settings, Overloaded};
use auth_core::{HasherError, PasswordCheck, PasswordHash, PasswordHasher};
use secrecy::SecretString;

fn settings(memory_kib: u32, iterations: u32) -> Argon2Settings {
    Argon2Settings {
        memory_kib,
        iterations,
        parallelism: 1,
        ..Argon2Settings::default()
    }
}

/// Cheap parameters: these tests are about behaviour, not strength.
fn fast() -> Argon2Hasher {
    Argon2Hasher::new(settings(64, 1)).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

/// A PHC string made directly with the argon2 crate, with any algorithm and parameters.
fn foreign_hash(
    algorithm: Algorithm,
    version: Version,
    m: u32,
    t: u32,
    password: &str,
) -> PasswordHash {
    let params = Params::new(m, t, 1, Some(32)).unwrap();
    let salt = SaltString::generate(&mut OsRng);
    let phc = Argon2::new(algorithm, version, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap();
    PasswordHash::new(phc.to_string())
}

async fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in time");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn round_trip_with_a_fresh_salt_each_time() {
    let hasher = fast();
    let pw = secret("correct horse battery staple");
    let a = hasher.hash(&pw).await.unwrap();
    let b = hasher.hash(&pw).await.unwrap();
    assert!(
        a.as_str().starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
        "{}",
        a.as_str()
    );
    assert_ne!(a.as_str(), b.as_str(), "salts must differ");
    assert_eq!(hasher.verify(&pw, &a).await.unwrap(), PasswordCheck::Match);
    assert_eq!(hasher.verify(&pw, &b).await.unwrap(), PasswordCheck::Match);
}

#[tokio::test]
async fn wrong_password_is_a_mismatch() {
    let hasher = fast();
    let hash = hasher
        .hash(&secret("correct horse battery staple"))
        .await
        .unwrap();
    for wrong in [
        "correct horse battery stapl",
        "Correct horse battery staple",
        "",
    ] {
        assert_eq!(
            hasher.verify(&secret(wrong), &hash).await.unwrap(),
            PasswordCheck::Mismatch,
            "{wrong:?}"
        );
    }
}

#[tokio::test]
async fn hashes_with_other_parameters_need_a_rehash() {
    let current = Argon2Hasher::new(settings(128, 2)).unwrap();
    let pw = "correct horse battery staple";
    let weaker = Argon2Hasher::new(settings(64, 1))
        .unwrap()
        .hash(&secret(pw))
        .await
        .unwrap();
    let stronger = Argon2Hasher::new(settings(256, 3))
        .unwrap()
        .hash(&secret(pw))
        .await
        .unwrap();
    let argon2i = foreign_hash(Algorithm::Argon2i, Version::V0x13, 128, 2, pw);
    let old_version = foreign_hash(Algorithm::Argon2id, Version::V0x10, 128, 2, pw);
    let same = foreign_hash(Algorithm::Argon2id, Version::V0x13, 128, 2, pw);

    for (name, hash) in [
        ("weaker", &weaker),
        ("stronger", &stronger),
        ("argon2i", &argon2i),
        ("v0x10", &old_version),
    ] {
        assert_eq!(
            current.verify(&secret(pw), hash).await.unwrap(),
            PasswordCheck::MatchNeedsRehash,
            "{name}"
        );
        assert_eq!(
            current
                .verify(&secret("wrong password"), hash)
                .await
                .unwrap(),
            PasswordCheck::Mismatch,
            "{name}"
        );
    }
    assert_eq!(
        current.verify(&secret(pw), &same).await.unwrap(),
        PasswordCheck::Match
    );
}

#[tokio::test]
async fn unusable_hashes_are_other_errors() {
    let hasher = fast();
    let pw = secret("correct horse battery staple");
    let good = hasher.hash(&pw).await.unwrap();
    let without_output = good.as_str().rsplit_once('$').unwrap().0.to_owned();
    let huge_memory = "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$\
                       AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for bad in [
        "",
        "not a hash",
        "$2b$31$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$2b$xx$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
        "$scrypt$ln=30,r=8,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$pbkdf2-sha256$i=100000000,l=32$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$md5$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$argon2id$v=19$m=64,t=1,p=1",
        without_output.as_str(),
        "$argon2id$v=19$m=64,t=1,p=1$!!!$!!!",
        "$argon2id$v=7$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        huge_memory,
    ] {
        match hasher.verify(&pw, &PasswordHash::new(bad)).await {
            Err(HasherError::Other(_)) => {}
            other => panic!("{bad:?}: expected Other, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn default_parameters_are_owasp_argon2id() {
    let hasher = Argon2Hasher::new(Argon2Settings::default()).unwrap();
    let pw = secret("correct horse battery staple");
    let hash = hasher.hash(&pw).await.unwrap();
    assert!(
        hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        hash.as_str()
    );
    // Debug builds run Argon2 slowly: one verify is enough here.
    assert_eq!(
        hasher.verify(&pw, &hash).await.unwrap(),
        PasswordCheck::Match
    );
}

/// Real hashes: with one slot and a queue of one, a third concurrent call is refused at once,
/// and the first two still complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_and_queue_are_bounded() {
    let hasher = Argon2Hasher::new(Argon2Settings {
        // Slow enough that the first hash is still running while the others arrive.
        memory_kib: 16 * 1024,
        iterations: 3,
        parallelism: 1,
        max_concurrent: 1,
        max_queue: 1,
        queue_timeout: Duration::from_secs(60),
        worker_nice: 0,
    })
    .unwrap();
    let spawn_hash = |hasher: &Argon2Hasher| {
        let hasher = hasher.clone();
        tokio::spawn(async move { hasher.hash(&secret("correct horse battery staple")).await })
    };

    let first = spawn_hash(&hasher);
    wait_until(|| hasher.in_flight() == 1).await;
    let second = spawn_hash(&hasher);
    wait_until(|| hasher.queued() == 1).await;
    assert_eq!(
        hasher.in_flight(),
        1,
        "the first hash ended too soon for this test"
    );

    // The port says so too, before any call is made: the service asks it first.
    let port: &dyn auth_core::PasswordHasher = &hasher;
    assert!(port.is_saturated(), "one running, one queued: saturated");
    assert_eq!(port.capacity(), Some(2), "one worker plus one queue place");

    let started = Instant::now();
    match hasher.hash(&secret("third")).await {
        Err(HasherError::Unavailable(source)) => assert_eq!(
            source.downcast_ref::<Overloaded>(),
            Some(&Overloaded::QueueFull { max_queue: 1 })
        ),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refusal must not wait"
    );

    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_eq!((hasher.in_flight(), hasher.queued()), (0, 0));
    assert!(!port.is_saturated());
}

/// The runtime thread is free while Argon2 runs: on a single-threaded runtime, a 10 ms timer
/// fires long before a (much slower) hash completes.
#[test]
fn hashing_does_not_block_the_runtime() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let hasher = Argon2Hasher::new(settings(16 * 1024, 3)).unwrap();
        let start = Instant::now();
        let pw = secret("correct horse battery staple");
        let (hash_done, timer_done) = tokio::join!(
            async {
                hasher.hash(&pw).await.unwrap();
                start.elapsed()
            },
            async {
                tokio::time::sleep(Duration::from_millis(10)).await;
                start.elapsed()
            }
        );
        assert!(
            timer_done < hash_done,
            "timer fired at {timer_done:?}, after the hash ended at {hash_done:?}"
        );
        assert!(timer_done < Duration::from_millis(500), "{timer_done:?}");
    });
}

/// `verify` of a hash with cheaper parameters still costs at least one run with the current
/// parameters, so timing does not tell old accounts from unknown e-mails. Loose bound: the
/// machine may be busy.
#[tokio::test]
async fn verify_of_a_cheap_legacy_hash_costs_a_full_run() {
    let current = Argon2Hasher::new(settings(8 * 1024, 2)).unwrap();
    let pw = secret("correct horse battery staple");
    let legacy = Argon2Hasher::new(settings(64, 1))
        .unwrap()
        .hash(&pw)
        .await
        .unwrap();

    let mut hash_times = Vec::new();
    let mut verify_times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        current.hash(&pw).await.unwrap();
        hash_times.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(
            current.verify(&pw, &legacy).await.unwrap(),
            PasswordCheck::MatchNeedsRehash
        );
        verify_times.push(t.elapsed());
    }
    hash_times.sort();
    verify_times.sort();
    let (hash, verify) = (hash_times[1], verify_times[1]);
    assert!(verify * 2 >= hash, "verify {verify:?} vs hash {hash:?}");
}

/// A PBKDF2-SHA256 hash in PHC form with 1000 rounds, as another system would hand it over.
fn cheap_pbkdf2(pw: &SecretString) -> PasswordHash {
    use pbkdf2::password_hash::{PasswordHasher as _, SaltString};
    let salt = SaltString::encode_b64(b"an imported salt").unwrap();
    let phc = pbkdf2::Pbkdf2
        .hash_password_customized(
            secrecy::ExposeSecret::expose_secret(pw).as_bytes(),
            Some(pbkdf2::Algorithm::Pbkdf2Sha256.ident()),
            None,
            pbkdf2::Params {
                rounds: 1000,
                output_length: 32,
            },
            &salt,
        )
        .unwrap();
    PasswordHash::new(phc.to_string())
}

/// A hash made elsewhere verifies (wrong passwords do not), always asks for a rehash, and
/// costs at least one run with the current parameters: an imported account is not told from
/// an unknown address by the time a login takes. Loose bound: the machine may be busy.
#[tokio::test]
async fn a_cheap_foreign_hash_verifies_needs_a_rehash_and_costs_a_full_run() {
    let current = Argon2Hasher::new(settings(32 * 1024, 3)).unwrap();
    let pw = secret("correct horse battery staple");
    let imported = cheap_pbkdf2(&pw);
    assert!(auth_argon2::is_supported_hash(imported.as_str()));
    assert_eq!(
        current
            .verify(&secret("wrong horse"), &imported)
            .await
            .unwrap(),
        PasswordCheck::Mismatch
    );
    let mut hash_times = Vec::new();
    let mut verify_times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        current.hash(&pw).await.unwrap();
        hash_times.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(
            current.verify(&pw, &imported).await.unwrap(),
            PasswordCheck::MatchNeedsRehash
        );
        verify_times.push(t.elapsed());
    }
    hash_times.sort();
    verify_times.sort();
    let (hash, verify) = (hash_times[1], verify_times[1]);
    assert!(verify * 2 >= hash, "verify {verify:?} vs hash {hash:?}");
}

#[test]
fn supported_hashes_are_argon2_bcrypt_scrypt_and_pbkdf2() {
    for good in [
        "$2b$04$0PpNwd4EoLWWmWindpy14ec5P86MLW9vH1jOn3newhlHUriqhmhvi",
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "$pbkdf2-sha512$i=1000,l=32$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(auth_argon2::is_supported_hash(good), "{good}");
    }
    for bad in [
        "",
        "5f4dcc3b5aa765d61d8327deb882cf99",
        "$2b$04$short",
        "$md5$c2FsdHNhbHRzYWx0$AAAA",
        "$pbkdf2$i=1000$c2FsdA$AAAA",
    ] {
        assert!(!auth_argon2::is_supported_hash(bad), "{bad}");
    }
}
