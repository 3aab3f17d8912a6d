//! [`Env`]: the environment as the settings sections read it, with one typed reader per kind
//! of value. Every reader trims, treats a blank value as unset, and names its variable in the
//! error it returns.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use super::ConfigError;

/// Shortest bearer token or key a `*_TOKEN` variable accepts, in bytes.
pub const MIN_TOKEN_BYTES: usize = 32;

/// A read-only view of the environment (the process's, or a map in tests).
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets: never shown.
        f.debug_struct("Env").finish_non_exhaustive()
    }
}

/// The error for `var`.
pub fn err(var: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        var,
        message: message.into(),
    }
}

/// Parses a duration: a bare number is seconds, otherwise `humantime` (`90s`, `10m`, `24h`).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    if let Ok(secs) = raw.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(raw)
        .map_err(|e| format!("{raw:?} is not a duration ({e}); e.g. 90s, 10m, 24h"))
}

impl<'a> Env<'a> {
    /// Reads through `lookup`.
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self { lookup }
    }

    /// The first of `names` that is set to something other than blanks, trimmed, with the
    /// name it was found under (the first name is the current one, the others are older
    /// spellings still accepted).
    pub fn first(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names.iter().find_map(|n| {
            (self.lookup)(n)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(|v| (*n, v))
        })
    }

    /// `var`'s value, trimmed; `None` when unset or blank.
    pub fn string(&self, var: &'static str) -> Option<String> {
        self.first(&[var]).map(|(_, v)| v)
    }

    /// Whether `var` is set to `off` (any case).
    pub fn is_off(&self, var: &'static str) -> bool {
        self.string(var)
            .is_some_and(|v| v.eq_ignore_ascii_case("off"))
    }

    /// `var` as a path.
    pub fn path(&self, var: &'static str) -> Option<PathBuf> {
        self.string(var).map(PathBuf::from)
    }

    /// `var` as a comma-separated list of non-blank items.
    pub fn list(&self, var: &'static str) -> Vec<String> {
        self.string(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `var` as a duration (see [`parse_duration`]), `default` when unset.
    pub fn duration(&self, var: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(raw) => parse_duration(&raw).map_err(|m| err(var, m)),
        }
    }

    /// [`Self::duration`] that must lie in `range`; `what` says so in the error.
    pub fn duration_in(
        &self,
        var: &'static str,
        default: Duration,
        range: RangeInclusive<Duration>,
        what: &str,
    ) -> Result<Duration, ConfigError> {
        let d = self.duration(var, default)?;
        if range.contains(&d) {
            Ok(d)
        } else {
            Err(err(var, what))
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), `default` when unset.
    pub fn flag(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) if ["1", "true", "yes", "on"].contains(&v.as_str()) => Ok(true),
            Some(v) if ["0", "false", "no", "off"].contains(&v.as_str()) => Ok(false),
            Some(v) => Err(err(var, format!("expected true or false, got {v:?}"))),
        }
    }

    /// `var` as a number, `default` when unset.
    pub fn number<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError> {
        match self.string(var) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| err(var, format!("{v:?} is not a valid number"))),
        }
    }

    /// A whole number in `range`, `default` when unset.
    pub fn number_in<T>(
        &self,
        var: &'static str,
        range: RangeInclusive<T>,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + std::fmt::Display,
    {
        let Some(raw) = self.string(var) else {
            return Ok(default);
        };
        match raw.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(err(
                var,
                format!(
                    "{raw:?} must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
            )),
        }
    }

    /// A number above zero; `None` when unset.
    pub fn positive(&self, var: &'static str) -> Result<Option<usize>, ConfigError> {
        self.string(var)
            .map(|v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| err(var, format!("{v:?} is not a positive number")))
            })
            .transpose()
    }

    /// One of `options` (each a set of accepted spellings, any case, and its value),
    /// `default` when unset; the error lists `expected`.
    pub fn choice<T: Copy>(
        &self,
        var: &'static str,
        options: &[(&[&str], T)],
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.string(var).map(|v| v.to_ascii_lowercase()) else {
            return Ok(default);
        };
        options
            .iter()
            .find(|(names, _)| names.contains(&v.as_str()))
            .map(|(_, value)| *value)
            .ok_or_else(|| err(var, format!("expected {expected}, got {v:?}")))
    }

    /// `host:port`; `None` when unset.
    pub fn socket_addr(
        &self,
        var: &'static str,
        example: &str,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        self.string(var)
            .map(|v| {
                v.parse()
                    .map_err(|_| err(var, format!("{v:?} is not host:port, e.g. {example}")))
            })
            .transpose()
    }

    /// A secret of at least [`MIN_TOKEN_BYTES`]; `None` when unset. The value is never
    /// echoed in the error.
    pub fn token(&self, var: &'static str) -> Result<Option<SecretString>, ConfigError> {
        match self.string(var).map(SecretString::from) {
            Some(t) if t.expose_secret().len() < MIN_TOKEN_BYTES => Err(err(
                var,
                "must be at least 32 bytes; generate one with `openssl rand -hex 32`",
            )),
            t => Ok(t),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn reading<R>(vars: &[(&str, &str)], read: impl FnOnce(&Env<'_>) -> R) -> R {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = |k: &str| map.get(k).cloned();
        read(&Env::new(&lookup))
    }

    #[test]
    fn blank_is_unset_and_values_are_trimmed() {
        reading(&[("A", "  "), ("B", " x "), ("OLD", "y")], |env| {
            assert_eq!(env.string("A"), None);
            assert_eq!(env.string("B").as_deref(), Some("x"));
            assert_eq!(env.first(&["A", "OLD"]), Some(("OLD", "y".to_owned())));
            assert_eq!(env.first(&["B", "OLD"]), Some(("B", "x".to_owned())));
        });
    }

    #[test]
    fn durations_are_seconds_or_units_and_bounded_where_asked() {
        let min = Duration::from_secs(60);
        reading(
            &[("A", "90"), ("B", "2m"), ("C", "soon"), ("D", "59s")],
            |env| {
                assert_eq!(env.duration("A", min).unwrap(), Duration::from_secs(90));
                assert_eq!(env.duration("B", min).unwrap(), Duration::from_secs(120));
                assert_eq!(env.duration("UNSET", min).unwrap(), min);
                assert_eq!(env.duration("C", min).unwrap_err().var, "C");
                let range = min..=Duration::from_secs(120);
                assert!(env.duration_in("B", min, range.clone(), "x").is_ok());
                assert!(env.duration_in("A", min, range.clone(), "x").is_ok());
                let e = env.duration_in("D", min, range, "at least 1m").unwrap_err();
                assert_eq!((e.var, e.message.as_str()), ("D", "at least 1m"));
            },
        );
    }

    #[test]
    fn numbers_flags_and_choices_name_their_variable() {
        reading(
            &[
                ("N", "7"),
                ("Z", "0"),
                ("F", "Off"),
                ("X", "maybe"),
                ("C", " Two "),
            ],
            |env| {
                assert_eq!(env.number("N", 1u32).unwrap(), 7);
                assert_eq!(env.number("UNSET", 1u32).unwrap(), 1);
                assert_eq!(env.number::<u32>("X", 1).unwrap_err().var, "X");
                assert_eq!(env.number_in("N", 0u8..=7, 1).unwrap(), 7);
                assert_eq!(env.number_in("N", 0u8..=6, 1).unwrap_err().var, "N");
                assert_eq!(env.positive("N").unwrap(), Some(7));
                assert_eq!(env.positive("Z").unwrap_err().var, "Z");
                assert_eq!(env.positive("UNSET").unwrap(), None);
                assert!(!env.flag("F", true).unwrap());
                assert!(env.flag("UNSET", true).unwrap());
                assert_eq!(env.flag("X", true).unwrap_err().var, "X");
                assert!(env.is_off("F") && !env.is_off("N"));
                let options: &[(&[&str], u8)] = &[(&["one"], 1), (&["two", "2"], 2)];
                assert_eq!(env.choice("C", options, 0, "one or two").unwrap(), 2);
                assert_eq!(env.choice("UNSET", options, 0, "one or two").unwrap(), 0);
                let e = env.choice("X", options, 0, "one or two").unwrap_err();
                assert!(e.message.contains("one or two"), "{}", e.message);
            },
        );
    }

    #[test]
    fn tokens_are_at_least_32_bytes_and_never_echoed() {
        let long = "k".repeat(MIN_TOKEN_BYTES);
        let short = "s".repeat(MIN_TOKEN_BYTES - 1);
        reading(&[("LONG", &long), ("SHORT", &short)], |env| {
            assert!(env.token("LONG").unwrap().is_some());
            assert!(env.token("UNSET").unwrap().is_none());
            let e = env.token("SHORT").unwrap_err();
            assert_eq!(e.var, "SHORT");
            assert!(!e.message.contains(&short));
        });
    }

    #[test]
    fn lists_and_addresses() {
        reading(
            &[("L", " a, ,b ,"), ("A", "127.0.0.1:9"), ("B", "9")],
            |env| {
                assert_eq!(env.list("L"), ["a", "b"]);
                assert!(env.list("UNSET").is_empty());
                assert_eq!(
                    env.socket_addr("A", "x").unwrap(),
                    Some("127.0.0.1:9".parse().unwrap())
                );
                assert_eq!(env.socket_addr("B", "x").unwrap_err().var, "B");
            },
        );
    }
}
