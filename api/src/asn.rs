//! BGP AS numbers as Calico's `numorstring.ASNumber` reads and writes them.
//!
//! Accepted: a JSON/YAML number (`65000`), a decimal string (`"65000"`), or the dotted
//! "asdot" form as a string (`"1.10"` = 1 * 65536 + 10 = 65546). Written: always a plain number,
//! as Calico writes it (the Go type has no `MarshalJSON`, so it marshals as a `uint32`).
//!
//! YAML reads an unquoted `asNumber: 1.10` as the float 1.1, losing the trailing zero, so
//! `1.1` and `1.10` cannot be told apart. Calico's calicoctl rejects it (the float reaches
//! `ASNumber.UnmarshalJSON`, which accepts neither a float nor a non-string). We reject it
//! too, with a message telling the user to quote the dotted form.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A 4-byte AS number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Asn(pub u32);

/// Why a text is not an AS number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid AS number '{0}': expected a number up to 4294967295 or dotted 'a.b' with a, b up to 65535"
)]
pub struct AsnError(pub String);

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

impl FromStr for Asn {
    type Err = AsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || AsnError(s.to_string());
        if digits(s) {
            return s.parse::<u32>().map(Asn).map_err(|_| err());
        }
        let (hi, lo) = s.split_once('.').ok_or_else(err)?;
        if !digits(hi) || !digits(lo) {
            return Err(err());
        }
        let hi: u16 = hi.parse().map_err(|_| err())?;
        let lo: u16 = lo.parse().map_err(|_| err())?;
        Ok(Asn((u32::from(hi) << 16) | u32::from(lo)))
    }
}

/// Plain decimal, as Calico prints AS numbers.
impl fmt::Display for Asn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Asn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

struct AsnVisitor;

impl Visitor<'_> for AsnVisitor {
    type Value = Asn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AS number: 65000, or dotted \"1.10\" in quotes")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Asn, E> {
        u32::try_from(v)
            .map(Asn)
            .map_err(|_| E::custom(AsnError(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Asn, E> {
        u32::try_from(v)
            .map(Asn)
            .map_err(|_| E::custom(AsnError(v.to_string())))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Asn, E> {
        Err(E::custom(format!(
            "invalid AS number {v}: a dotted AS number must be quoted (e.g. \"1.10\"), \
             unquoted YAML reads it as a decimal fraction"
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Asn, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Asn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AsnVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_yaml(text: &str) -> Result<Asn, String> {
        let v: serde_json::Value = serde_yaml::from_str(text).unwrap();
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn plain_and_dotted() {
        assert_eq!(from_yaml("65000"), Ok(Asn(65000)));
        assert_eq!(from_yaml("'65000'"), Ok(Asn(65000)));
        assert_eq!(from_yaml("'1.10'"), Ok(Asn(65546)));
        assert_eq!(from_yaml("'0.65535'"), Ok(Asn(65535)));
        assert_eq!(from_yaml("'65535.65535'"), Ok(Asn(u32::MAX)));
        assert_eq!(from_yaml("4294967295"), Ok(Asn(u32::MAX)));
    }

    #[test]
    fn written_as_a_number() {
        assert_eq!(
            serde_json::to_string(&"1.10".parse::<Asn>().unwrap()).unwrap(),
            "65546"
        );
        assert_eq!(Asn(64512).to_string(), "64512");
    }

    #[test]
    fn rejects() {
        for bad in [
            "4294967296",
            "-1",
            "'65536.1'",
            "'1.65536'",
            "'1.2.3'",
            "'+5'",
            "'a'",
            "''",
            "'1.'",
        ] {
            assert!(from_yaml(bad).is_err(), "{bad}");
        }
        assert_eq!(
            from_yaml("1.10").unwrap_err(),
            "invalid AS number 1.1: a dotted AS number must be quoted (e.g. \"1.10\"), \
             unquoted YAML reads it as a decimal fraction"
        );
        assert_eq!(
            from_yaml("'1.x'").unwrap_err(),
            "invalid AS number '1.x': expected a number up to 4294967295 or dotted 'a.b' with a, b up to 65535"
        );
    }
}
