//! The Argon2 side: parameters, hashing, verifying a stored hash (and when it needs a rehash),
//! and the [`PasswordHasher`] impl that hands each call to the worker pool.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, ParamsString, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use auth_core::{HasherError, PasswordCheck, PasswordHash, PasswordHasher};
use secrecy::{ExposeSecret, SecretString};

use crate::pool::Queue;
use crate::settings::{Argon2ConfigError, Argon2Settings};

/// Length of the derived key in bytes.
pub const OUTPUT_LEN: usize = 32;

/// Stored hashes asking for more memory than this (KiB) are refused as corrupt rather than
/// run: a damaged row must not make one login allocate gigabytes.
const MAX_STORED_MEMORY_KIB: u32 = 1 << 20;
/// Same for passes.
const MAX_STORED_ITERATIONS: u32 = 64;
/// Highest bcrypt cost of an imported hash that is run (2^16 rounds, about 5 s).
const MAX_BCRYPT_COST: u32 = 16;
/// Most memory an imported scrypt hash may ask for (1 GiB, as for Argon2).
const MAX_FOREIGN_MEMORY_BYTES: u64 = 1 << 30;
/// Most scrypt lanes of an imported hash.
const MAX_SCRYPT_LANES: u32 = 16;
/// Most PBKDF2 rounds of an imported hash.
const MAX_PBKDF2_ROUNDS: u32 = 10_000_000;

/// Whether `stored` is a hash this adapter can verify: Argon2 in PHC form (any parameters
/// within bounds), bcrypt (`$2a$`, `$2b$`, `$2x$`, `$2y$`), scrypt or PBKDF2-SHA256/512 in PHC
/// form. A login with any of them that is not the current Argon2id answers
/// [`PasswordCheck::MatchNeedsRehash`], so the service stores a current hash.
pub fn is_supported_hash(stored: &str) -> bool {
    if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
    {
        return stored.len() == 60 && stored.get(4..6).is_some_and(|c| c.parse::<u32>().is_ok());
    }
    let Ok(parsed) = password_hash::PasswordHash::new(stored) else {
        return false;
    };
    match parsed.algorithm.as_str() {
        "argon2id" | "argon2i" | "argon2d" => Params::try_from(&parsed).is_ok(),
        "scrypt" => scrypt::Params::try_from(&parsed).is_ok(),
        "pbkdf2-sha256" | "pbkdf2-sha512" => pbkdf2::Params::try_from(&parsed).is_ok(),
        _ => false,
    }
}

/// Argon2id password hasher with bounded concurrency. Cheap to clone (shared state); the
/// worker threads stop when the last clone is dropped.
#[derive(Clone)]
pub struct Argon2Hasher {
    pub(crate) inner: Arc<Inner>,
    pub(crate) queue: Arc<Queue>,
}

/// What every worker shares: the configured Argon2 instance and the settings.
pub(crate) struct Inner {
    argon2: Argon2<'static>,
    /// The parameters `argon2` was built with (it has no getter).
    params: Params,
    pub(crate) settings: Argon2Settings,
}

impl fmt::Debug for Argon2Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Argon2Hasher")
            .field("settings", &self.inner.settings)
            .field("in_flight", &self.in_flight())
            .field("queued", &self.queued())
            .finish()
    }
}

impl Argon2Hasher {
    /// Builds a hasher and starts its `max_concurrent` worker threads; checks the Argon2
    /// parameters once, here.
    pub fn new(settings: Argon2Settings) -> Result<Self, Argon2ConfigError> {
        if settings.max_concurrent == 0 {
            return Err(Argon2ConfigError::NoConcurrency);
        }
        if settings.worker_nice > Argon2Settings::MAX_WORKER_NICE {
            return Err(Argon2ConfigError::Nice);
        }
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(Argon2ConfigError::Params)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let inner = Arc::new(Inner {
            argon2,
            params,
            settings,
        });
        let queue = Arc::new(Queue::start(&inner)?);
        Ok(Self { inner, queue })
    }

    /// The settings in force.
    pub fn settings(&self) -> &Argon2Settings {
        &self.inner.settings
    }
}

fn other(e: impl std::error::Error + Send + Sync + 'static) -> HasherError {
    HasherError::Other(Box::new(e))
}

/// A stored hash this adapter cannot use.
#[derive(Debug, thiserror::Error)]
#[error("unusable password hash: {0}")]
struct BadHash(&'static str);

impl Inner {
    /// Runs `f` with `blocks` blocks of working memory: the worker's own buffer when the
    /// current parameters ask for it (the usual case), a temporary one for an old hash with
    /// other parameters.
    fn with_memory<T>(
        &self,
        memory: &mut Vec<Block>,
        blocks: usize,
        f: impl FnOnce(&mut [Block]) -> T,
    ) -> T {
        if blocks != self.params.block_count() {
            return f(&mut vec![Block::default(); blocks]);
        }
        if memory.len() != blocks {
            *memory = vec![Block::default(); blocks];
        }
        f(memory)
    }

    fn hash(
        &self,
        memory: &mut Vec<Block>,
        password: &SecretString,
    ) -> Result<PasswordHash, HasherError> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).map_err(other)?;
        let mut out = [0u8; OUTPUT_LEN];
        self.with_memory(memory, self.params.block_count(), |blocks| {
            self.argon2.hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt_bytes,
                &mut out,
                blocks,
            )
        })
        .map_err(other)?;
        let phc = password_hash::PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(other)?,
            salt: Some(salt.as_salt()),
            hash: Some(password_hash::Output::new(&out).map_err(other)?),
        };
        Ok(PasswordHash::new(phc.to_string()))
    }

    /// One Argon2 run with the current parameters whose output is thrown away: keeps a
    /// verification at least as slow as [`hash`](Self::hash).
    fn pad_to_current(
        &self,
        memory: &mut Vec<Block>,
        password: &SecretString,
    ) -> Result<(), HasherError> {
        let mut sink = [0u8; OUTPUT_LEN];
        self.with_memory(memory, self.params.block_count(), |blocks| {
            self.argon2.hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                &[0u8; 16],
                &mut sink,
                blocks,
            )
        })
        .map_err(other)
    }

    /// Checks `password` against a hash made by another system (bcrypt, scrypt or PBKDF2 in
    /// PHC form): `Ok(None)` when `stored` is none of these. Costs are bounded as for Argon2,
    /// so a damaged or hostile row cannot make one login run for minutes.
    fn verify_foreign(password: &SecretString, stored: &str) -> Result<Option<bool>, HasherError> {
        use argon2::password_hash::PasswordVerifier as _;
        fn checked(r: Result<(), password_hash::Error>) -> Result<Option<bool>, HasherError> {
            match r {
                Ok(()) => Ok(Some(true)),
                Err(password_hash::Error::Password) => Ok(Some(false)),
                Err(e) => Err(other(e)),
            }
        }
        let pw = password.expose_secret().as_bytes();
        if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            let cost: u32 = stored
                .get(4..6)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| other(BadHash("bcrypt cost")))?;
            if cost > MAX_BCRYPT_COST {
                return Err(other(BadHash("cost parameters out of range")));
            }
            return bcrypt::verify(pw, stored).map(Some).map_err(other);
        }
        if !stored.starts_with("$scrypt$") && !stored.starts_with("$pbkdf2-sha") {
            return Ok(None);
        }
        let parsed = password_hash::PasswordHash::new(stored).map_err(other)?;
        match parsed.algorithm.as_str() {
            "scrypt" => {
                let params = scrypt::Params::try_from(&parsed).map_err(other)?;
                // 128 · r · 2^ln bytes of memory for each of p lanes, one after the other.
                let bytes = 128u64
                    .saturating_mul(u64::from(params.r()))
                    .saturating_mul(1u64 << params.log_n().min(63));
                if bytes > MAX_FOREIGN_MEMORY_BYTES || params.p() > MAX_SCRYPT_LANES {
                    return Err(other(BadHash("cost parameters out of range")));
                }
                checked(scrypt::Scrypt.verify_password(pw, &parsed))
            }
            "pbkdf2-sha256" | "pbkdf2-sha512" => {
                let params = pbkdf2::Params::try_from(&parsed).map_err(other)?;
                if params.rounds > MAX_PBKDF2_ROUNDS {
                    return Err(other(BadHash("cost parameters out of range")));
                }
                checked(pbkdf2::Pbkdf2.verify_password(pw, &parsed))
            }
            _ => Ok(None),
        }
    }

    fn verify(
        &self,
        memory: &mut Vec<Block>,
        password: &SecretString,
        stored: &PasswordHash,
    ) -> Result<PasswordCheck, HasherError> {
        if let Some(matched) = Self::verify_foreign(password, stored.as_str())? {
            // Whatever the other system's cost, the call costs at least one current run, so
            // an imported account is not told apart from an unknown address by timing.
            self.pad_to_current(memory, password)?;
            return Ok(if matched {
                PasswordCheck::MatchNeedsRehash
            } else {
                PasswordCheck::Mismatch
            });
        }
        let parsed = password_hash::PasswordHash::new(stored.as_str()).map_err(other)?;
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(other)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(other)?
            .unwrap_or_default();
        let params = Params::try_from(&parsed).map_err(other)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(other(BadHash("no salt or no output")));
        };
        if params.m_cost() > MAX_STORED_MEMORY_KIB.max(self.settings.memory_kib)
            || params.t_cost() > MAX_STORED_ITERATIONS.max(self.settings.iterations)
        {
            return Err(other(BadHash("cost parameters out of range")));
        }

        let current = &self.params;
        let up_to_date = algorithm == Algorithm::Argon2id
            && version == Version::V0x13
            && params.m_cost() == current.m_cost()
            && params.t_cost() == current.t_cost()
            && params.p_cost() == current.p_cost()
            && params.output_len() == Some(OUTPUT_LEN)
            && params.keyid().is_empty()
            && params.data().is_empty();

        // Uses the stored algorithm, version and parameters; compares in constant time
        // (`Output`'s equality is constant-time).
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(other)?;
        let mut out = [0u8; password_hash::Output::MAX_LENGTH];
        let out = out
            .get_mut(..expected.len())
            .ok_or_else(|| other(BadHash("output too long")))?;
        let stored_argon2 = Argon2::new(algorithm, version, params.clone());
        self.with_memory(memory, params.block_count(), |blocks| {
            stored_argon2.hash_password_into_with_memory(
                password.expose_secret().as_bytes(),
                salt_bytes,
                out,
                blocks,
            )
        })
        .map_err(other)?;
        let matched = password_hash::Output::new(out).map_err(other)? == expected;

        if !up_to_date && cost(&params) < cost(current) {
            // A hash with cheaper parameters verified faster than `hash` runs; one run with
            // the current parameters keeps this call at least as slow as an unknown-email
            // login, which the service answers with `hash`.
            self.pad_to_current(memory, password)?;
        }

        Ok(match (matched, up_to_date) {
            (false, _) => PasswordCheck::Mismatch,
            (true, true) => PasswordCheck::Match,
            (true, false) => PasswordCheck::MatchNeedsRehash,
        })
    }
}

/// Relative cost of one run (memory × passes).
fn cost(params: &Params) -> u64 {
    u64::from(params.m_cost()) * u64::from(params.t_cost())
}

#[async_trait::async_trait]
impl PasswordHasher for Argon2Hasher {
    /// One Argon2id run with the current parameters and a fresh salt.
    async fn hash(&self, password: &SecretString) -> Result<PasswordHash, HasherError> {
        let password = password.clone();
        self.run(move |inner, memory| inner.hash(memory, &password))
            .await
    }

    /// One Argon2 run with the stored hash's parameters; when those are cheaper than the
    /// current ones, one more run with the current parameters, so the call never costs less
    /// than [`hash`](PasswordHasher::hash). Returns [`PasswordCheck::MatchNeedsRehash`] when the
    /// stored algorithm, version, parameters or output length differ from the current ones,
    /// and [`HasherError::Other`] for a hash that does not parse, is not Argon2, or asks for
    /// absurd costs.
    async fn verify(
        &self,
        password: &SecretString,
        hash: &PasswordHash,
    ) -> Result<PasswordCheck, HasherError> {
        let password = password.clone();
        let hash = hash.clone();
        self.run(move |inner, memory| inner.verify(memory, &password, &hash))
            .await
    }

    fn is_saturated(&self) -> bool {
        Argon2Hasher::is_saturated(self)
    }

    fn capacity(&self) -> Option<usize> {
        let settings = &self.inner.settings;
        Some(settings.max_concurrent.saturating_add(settings.max_queue))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::test_support::{pw, small};

    #[test]
    fn hashes_and_verifies_under_block_on() {
        use futures::executor::block_on;
        assert!(tokio::runtime::Handle::try_current().is_err());
        let hasher = small(2, 8, Duration::from_secs(5));
        let hash = block_on(hasher.hash(&pw())).unwrap();
        assert_eq!(
            block_on(hasher.verify(&pw(), &hash)).unwrap(),
            PasswordCheck::Match
        );
        assert_eq!(
            block_on(hasher.verify(&SecretString::from("wrong"), &hash)).unwrap(),
            PasswordCheck::Mismatch
        );
    }

    #[test]
    fn zero_concurrency_and_bad_params_are_refused() {
        let settings = Argon2Settings {
            max_concurrent: 0,
            ..Argon2Settings::default()
        };
        assert!(matches!(
            Argon2Hasher::new(settings),
            Err(Argon2ConfigError::NoConcurrency)
        ));
        let settings = Argon2Settings {
            iterations: 0,
            ..Argon2Settings::default()
        };
        assert!(matches!(
            Argon2Hasher::new(settings),
            Err(Argon2ConfigError::Params(_))
        ));
        let settings = Argon2Settings {
            worker_nice: 20,
            ..Argon2Settings::default()
        };
        assert!(matches!(
            Argon2Hasher::new(settings),
            Err(Argon2ConfigError::Nice)
        ));
        let settings = Argon2Settings {
            worker_nice: 19,
            ..Argon2Settings::default()
        };
        assert!(Argon2Hasher::new(settings).is_ok(), "19 is the highest");
    }
}
