//! Go durations (`30s`, `2m`, `1h2m3.5s`), as Calico's `metav1.Duration` fields take them.
//!
//! The user's text is kept and written back unchanged, so `2m` stays `2m` (Go would print
//! `2m0s`); the parsed value is there for the code that uses it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration as written, with its value in nanoseconds (negative allowed, as in Go).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Duration {
    text: String,
    nanos: i64,
}

/// Why a text is not a Go duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration '{text}': {reason} (expected e.g. 30s, 2m, 1h2m3.5s; units ns, us, ms, s, m, h)"
)]
pub struct DurationError {
    pub text: String,
    pub reason: &'static str,
}

const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Go's `time.ParseDuration` grammar: `[-+]?(digits[.digits]unit)+`, or a bare `0`.
fn parse_nanos(s: &str) -> Result<i64, &'static str> {
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("empty");
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after) = rest.strip_prefix('.') {
            let frac_len = after.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after[..frac_len];
            rest = &after[frac_len..];
        }
        if int_part.is_empty() && frac_part.is_empty() {
            return Err("expected a number");
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err("missing unit");
        }
        let &(_, scale) = UNITS
            .iter()
            .find(|(u, _)| *u == unit)
            .ok_or("unknown unit")?;
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| "out of range")?
        };
        let mut value = int.checked_mul(scale).ok_or("out of range")?;
        // Fractional digits beyond nanosecond precision do not change the value.
        let mut frac_scale = scale;
        for d in frac_part.bytes() {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            value += u128::from(d - b'0') * frac_scale;
        }
        total = total.checked_add(value).ok_or("out of range")?;
        if total > i64::MAX as u128 + u128::from(neg) {
            return Err("out of range");
        }
    }
    if neg {
        Ok((-(total as i128)) as i64)
    } else {
        Ok(total as i64)
    }
}

impl Duration {
    /// The text as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value in nanoseconds.
    pub fn nanos(&self) -> i64 {
        self.nanos
    }

    /// The value as a standard duration; `None` when negative.
    pub fn to_std(&self) -> Option<std::time::Duration> {
        u64::try_from(self.nanos)
            .ok()
            .map(std::time::Duration::from_nanos)
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_nanos(s)
            .map(|nanos| Duration {
                text: s.to_string(),
                nanos,
            })
            .map_err(|reason| DurationError {
                text: s.to_string(),
                reason,
            })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(s: &str) -> i64 {
        s.parse::<Duration>()
            .unwrap_or_else(|e| panic!("{e}"))
            .nanos()
    }

    #[test]
    fn go_durations() {
        assert_eq!(nanos("30s"), 30_000_000_000);
        assert_eq!(nanos("2m"), 120_000_000_000);
        assert_eq!(nanos("1h2m3.5s"), 3_723_500_000_000);
        assert_eq!(nanos("0"), 0);
        assert_eq!(nanos("1.5h"), 5_400_000_000_000);
        assert_eq!(nanos(".5s"), 500_000_000);
        assert_eq!(nanos("1.s"), 1_000_000_000);
        assert_eq!(nanos("100ms"), 100_000_000);
        assert_eq!(nanos("10us"), 10_000);
        assert_eq!(nanos("10\u{b5}s"), 10_000);
        assert_eq!(nanos("-1m"), -60_000_000_000);
        assert_eq!(nanos("+5ns"), 5);
        assert_eq!(nanos("1.0000000001s"), 1_000_000_000);
    }

    #[test]
    fn text_kept() {
        let d: Duration = serde_json::from_str("\"2m\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"2m\"");
        assert_eq!(d.to_std(), Some(std::time::Duration::from_secs(120)));
        assert_eq!("-1s".parse::<Duration>().unwrap().to_std(), None);
    }

    #[test]
    fn rejects() {
        for bad in ["", "30", "s", "1x", "1.5", "-", ".s", "1h 2m", "3000000h"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
        assert_eq!(
            "10x".parse::<Duration>().unwrap_err().to_string(),
            "invalid duration '10x': unknown unit (expected e.g. 30s, 2m, 1h2m3.5s; \
             units ns, us, ms, s, m, h)"
        );
        assert_eq!(
            serde_json::from_str::<Duration>("30")
                .unwrap_err()
                .to_string(),
            "invalid type: integer `30`, expected a string at line 1 column 2"
        );
    }
}
