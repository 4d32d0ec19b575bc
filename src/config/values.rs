//! Typed option values. Each parser serves both clap (flags and the
//! environment) and serde (the file), so both accept the same spellings and
//! give the same explanation when a value is malformed; clap and toml add
//! the option's name (or the file's line) to it.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

/// Whole seconds (`60`), or a number with a unit: `90s`, `10m`, `12h`, `1d`.
pub(super) fn duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected whole seconds or a number with a unit, e.g. 60, 90s, 10m, 12h, 1d";
    let text = text.trim();
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let unit_secs: u64 = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(EXPECTED.into()),
    };
    n.parse::<u64>().ok().and_then(|n| n.checked_mul(unit_secs)).map(Duration::from_secs).ok_or_else(|| EXPECTED.into())
}

/// A byte count: `1GiB`, `512MiB`, `64KiB`, `10MB`, or plain bytes.
pub(super) fn size(text: &str) -> Result<u64, String> {
    const EXPECTED: &str = "expected a size, e.g. 1GiB, 512MiB, 10MB or 1000000";
    let text = text.trim();
    let (n, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(EXPECTED.into()),
    };
    n.parse::<u64>().ok().and_then(|n| n.checked_mul(mult)).ok_or_else(|| EXPECTED.into())
}

/// `true`/`false` and their usual spellings.
pub(super) fn boolean(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "on" | "1" | "yes" => Ok(true),
        "false" | "off" | "0" | "no" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// An IP address and port; host names are not resolved.
pub(super) fn address(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| "expected address:port, e.g. 127.0.0.1:50051 or [::1]:50051".into())
}

/// `NAME=VALUE`, a Trino session property.
pub(super) fn property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.to_string())),
        _ => Err("expected NAME=VALUE".into()),
    }
}

/// A password, token or signing key. Its `Debug` shows no part of it, so
/// the argument structs can be logged.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub(super) fn into_inner(self) -> String {
        self.0
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Redacted.fmt(f)
    }
}

/// Stands in for a secret in `Debug` output.
pub(super) struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// The file's side of the parsers above, for `#[serde(deserialize_with)]` on
// `Option` fields (a missing key is left to `#[serde(default)]`).

pub(super) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    via(d, duration)
}

pub(super) fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    via(d, size)
}

pub(super) fn de_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    via(d, address)
}

pub(super) fn de_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    via(d, |text| url::Url::parse(text.trim()).map_err(|e| e.to_string()))
}

/// A `[...session_properties]` table, in the form the flags give.
pub(super) fn de_properties<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    Ok(std::collections::BTreeMap::<String, String>::deserialize(d)?.into_iter().collect())
}

/// Runs a text parser on a string or an integer (`ttl_secs = 60` and
/// `max_bytes = "1GiB"` are both natural in TOML).
fn via<'de, D: Deserializer<'de>, T>(d: D, parse: fn(&str) -> Result<T, String>) -> Result<Option<T>, D::Error> {
    struct Text<T>(fn(&str) -> Result<T, String>);

    impl<T> de::Visitor<'_> for Text<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an integer")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            self.visit_str(&v.to_string())
        }
    }

    d.deserialize_any(Text(parse)).map(Some)
}

/// Merges `NAME=VALUE` lists: each of `lower`'s properties unless `upper`
/// (the higher layer) sets the same name.
pub(super) fn override_properties(upper: &mut Vec<(String, String)>, lower: Vec<(String, String)>) {
    let mut merged: Vec<(String, String)> =
        lower.into_iter().filter(|(name, _)| !upper.iter().any(|(n, _)| n == name)).collect();
    merged.append(upper);
    *upper = merged;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86_400)));
        for bad in ["", "s", "-1", "1.5", "5x", "1 week", "99999999999999999999d"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1GiB"), Ok(1 << 30));
        assert_eq!(size("512MiB"), Ok(512 << 20));
        assert_eq!(size("64k"), Ok(64 << 10));
        assert_eq!(size("10MB"), Ok(10_000_000));
        assert_eq!(size("12"), Ok(12));
        for bad in ["", "lots", "1TiB", "-1", "99999999999GiB"] {
            assert!(size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn booleans_addresses_properties() {
        assert_eq!(boolean("on"), Ok(true));
        assert_eq!(boolean("No"), Ok(false));
        assert!(boolean("maybe").is_err());
        assert_eq!(address("[::1]:9").unwrap().port(), 9);
        assert!(address("localhost:9").is_err());
        assert_eq!(property(" a =b=c"), Ok(("a".into(), "b=c".into())));
        assert!(property("=x").is_err());
        assert_eq!(format!("{:?}", Some(Secret::from("hunter2"))), "Some(<redacted>)");
    }
}
