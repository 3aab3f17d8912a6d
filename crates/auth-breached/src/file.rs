//! [`HashFile`]: an offline list of SHA-1 hashes.

use std::path::Path;

use auth_core::{BreachCheckError, BreachedPasswords, PasswordSha1};

/// Why a [`HashFile`] could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum HashFileError {
    /// The file cannot be read.
    #[error("reading {path} failed")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a SHA-1 hash (40 hex digits, optionally `:COUNT`).
    #[error("{path}:{line}: not a SHA-1 hash (40 hex digits, optionally followed by :COUNT)")]
    BadLine {
        /// The file.
        path: String,
        /// The 1-based line number.
        line: usize,
    },
}

/// A list of SHA-1 password hashes held in memory (20 bytes each, sorted), read once from a
/// file with one hash per line: `HASH` or `HASH:COUNT` (the format of the downloadable Pwned
/// Passwords files), upper or lower case; empty lines and lines starting with `#` are skipped.
/// Lookups are a binary search: no I/O after loading.
#[derive(Clone)]
pub struct HashFile {
    hashes: std::sync::Arc<[[u8; 20]]>,
}

impl std::fmt::Debug for HashFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashFile")
            .field("hashes", &self.hashes.len())
            .finish()
    }
}

impl HashFile {
    /// Reads and checks the whole file.
    pub async fn load(path: &Path) -> Result<Self, HashFileError> {
        let shown = path.display().to_string();
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| HashFileError::Read {
                path: shown.clone(),
                source,
            })?;
        Self::parse(&text).map_err(|line| HashFileError::BadLine { path: shown, line })
    }

    /// The list in `text`; on a malformed line, its 1-based number.
    pub fn parse(text: &str) -> Result<Self, usize> {
        let mut hashes = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let hash = line.split_once(':').map_or(line, |(hash, _)| hash);
            let mut bytes = [0u8; 20];
            hex::decode_to_slice(hash, &mut bytes).map_err(|_| n + 1)?;
            hashes.push(bytes);
        }
        hashes.sort_unstable();
        hashes.dedup();
        Ok(Self {
            hashes: hashes.into(),
        })
    }

    /// How many distinct hashes it holds.
    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

#[async_trait::async_trait]
impl BreachedPasswords for HashFile {
    async fn is_breached(&self, password: &PasswordSha1) -> Result<bool, BreachCheckError> {
        Ok(self.hashes.binary_search(password.as_bytes()).is_ok())
    }
}
