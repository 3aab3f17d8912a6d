//! [`RangeApi`]: the k-anonymity range query.

use std::time::Duration;

use auth_core::{BreachCheckError, BreachedPasswords, PasswordSha1};
use reqwest::Url;

/// How long one range query may take before the check gives up (and the service lets the
/// password through with a warning).
pub const DEFAULT_RANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest range answer read (a real range is about 30 KiB with padding).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Why a [`RangeApi`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RangeApiError {
    /// The base URL is not an absolute `http(s)` URL that ranges can be appended to.
    #[error("{0:?} is not an http(s) base URL, e.g. https://api.pwnedpasswords.com/range/")]
    BadUrl(String),
    /// The HTTP client could not be built (TLS set-up).
    #[error("building the HTTP client failed")]
    Client(#[source] reqwest::Error),
}

/// A k-anonymity range service: `GET {base}{first five hex digits of the SHA-1}` answers
/// `SUFFIX:COUNT` lines for every listed hash in that range. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RangeApi {
    client: reqwest::Client,
    base: Url,
}

impl RangeApi {
    /// A client of the service at `base` (e.g. `https://api.pwnedpasswords.com/range/`; a
    /// missing final `/` is added), giving up on a query after `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Result<Self, RangeApiError> {
        let with_slash = if base.ends_with('/') {
            base.to_owned()
        } else {
            format!("{base}/")
        };
        let base = Url::parse(&with_slash).map_err(|_| RangeApiError::BadUrl(base.to_owned()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(RangeApiError::BadUrl(with_slash));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("secureauth/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(RangeApiError::Client)?;
        Ok(Self { client, base })
    }

    async fn range(&self, prefix: &str) -> Result<String, BreachCheckError> {
        let url = self.base.join(prefix).map_err(unavailable)?;
        let mut answer = self
            .client
            .get(url)
            .header("Add-Padding", "true")
            .send()
            .await
            .map_err(unavailable)?
            .error_for_status()
            .map_err(unavailable)?;
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(unavailable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(unavailable("the range answer is larger than 1 MiB"));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(unavailable)
    }
}

fn unavailable(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BreachCheckError {
    BreachCheckError::Unavailable(e.into())
}

/// Whether `suffix` is listed in a range answer with a count above zero (padding lines have
/// count 0; lines that do not parse are skipped).
fn listed(answer: &str, suffix: &str) -> bool {
    answer.lines().any(|line| {
        let Some((hash, count)) = line.trim().split_once(':') else {
            return false;
        };
        hash.eq_ignore_ascii_case(suffix) && count.trim().parse::<u64>().is_ok_and(|n| n > 0)
    })
}

#[async_trait::async_trait]
impl BreachedPasswords for RangeApi {
    #[tracing::instrument(name = "breached.range", skip_all)]
    async fn is_breached(&self, password: &PasswordSha1) -> Result<bool, BreachCheckError> {
        let answer = self.range(&password.range_prefix()).await?;
        Ok(listed(&answer, &password.range_suffix()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suffix_is_listed_only_with_a_count_above_zero() {
        let answer = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n\
                      1E4C9B93F3F0682250B6CF8331B7EE68FD8:10434004\r\n\
                      00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n\
                      not a line\r\n";
        assert!(listed(answer, "1E4C9B93F3F0682250B6CF8331B7EE68FD8"));
        assert!(listed(answer, "1e4c9b93f3f0682250b6cf8331b7ee68fd8"));
        assert!(
            !listed(answer, "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"),
            "padding"
        );
        assert!(!listed(answer, "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"));
    }

    #[test]
    fn the_base_url_must_be_http_and_gets_its_slash() {
        assert!(RangeApi::new(
            "https://api.pwnedpasswords.com/range",
            DEFAULT_RANGE_TIMEOUT
        )
        .is_ok());
        assert!(matches!(
            RangeApi::new("ftp://example.com/range/", DEFAULT_RANGE_TIMEOUT),
            Err(RangeApiError::BadUrl(_))
        ));
        assert!(matches!(
            RangeApi::new("not a url", DEFAULT_RANGE_TIMEOUT),
            Err(RangeApiError::BadUrl(_))
        ));
        let api = RangeApi::new("http://127.0.0.1:9/range", DEFAULT_RANGE_TIMEOUT).unwrap();
        assert_eq!(api.base.join("5BAA6").unwrap().path(), "/range/5BAA6");
    }
}
