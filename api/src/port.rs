//! `Port`: a port number, a range of ports, or a named port, Calico's `numorstring.Port`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A port in a rule: `80`, `"8080:8090"`, or a named port (`"http"`) that endpoints define.
///
/// Written back as Calico writes it: a single port as a number, a range as `"min:max"` (a range
/// of one port as the number), a name as the string.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    /// Ports `min` to `max` inclusive; a single port has `min == max`.
    Range {
        min: u16,
        max: u16,
    },
    Named(String),
}

impl Port {
    pub fn single(port: u16) -> Port {
        Port::Range {
            min: port,
            max: port,
        }
    }

    pub fn is_named(&self) -> bool {
        matches!(self, Port::Named(_))
    }

    /// Calico's port checks on a parsed port: numbers are 1-65535, names are Kubernetes port
    /// names (`IsValidPortName`). The reason if not.
    pub fn problem(&self) -> Option<String> {
        match self {
            Port::Range { min, .. } if *min < 1 => {
                Some("port range invalid, port number must be between 1 and 65535".to_string())
            }
            Port::Range { .. } => None,
            Port::Named(n) => port_name_problem(n),
        }
    }

    /// Parse a port's text as Calico does: digits are one port, `<digits>:<digits>` a range
    /// (`min` not above `max`), anything else a name of 1-128 `[a-zA-Z0-9_.-]`.
    pub fn parse(s: &str) -> Result<Port, String> {
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if digits(s) {
            return s
                .parse()
                .map(Port::single)
                .map_err(|_| format!("invalid port format ({s})"));
        }
        if let Some((a, b)) = s.split_once(':').filter(|(a, b)| digits(a) && digits(b)) {
            let min: u16 = a
                .parse()
                .map_err(|_| format!("invalid minimum port number in range ({s})"))?;
            let max: u16 = b
                .parse()
                .map_err(|_| format!("invalid maximum port number in range ({s})"))?;
            if min > max {
                return Err(format!(
                    "minimum port number ({min}) is greater than maximum port number ({max}) in \
                     port range"
                ));
            }
            return Ok(Port::Range { min, max });
        }
        let name_chars = |b: u8| b.is_ascii_alphanumeric() || b"_.-".contains(&b);
        if (1..=128).contains(&s.len()) && s.bytes().all(name_chars) {
            Ok(Port::Named(s.to_string()))
        } else {
            Err(format!("invalid name for named port ({s})"))
        }
    }
}

/// Kubernetes' `IsValidPortName`, which Calico applies to named ports and endpoint port names:
/// at most 15 of `[a-z0-9-]`, at least one letter, no `--`, no `-` at either end.
pub fn port_name_problem(name: &str) -> Option<String> {
    let mut problems = Vec::new();
    if name.len() > 15 {
        problems.push("must be no more than 15 characters");
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        problems.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    } else if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        problems.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        problems.push("must not begin or end with a hyphen");
    }
    (!problems.is_empty()).then(|| format!("invalid port name: {}", problems.join(", ")))
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Range { min, max } if min == max => write!(f, "{min}"),
            Port::Range { min, max } => write!(f, "{min}:{max}"),
            Port::Named(n) => f.write_str(n),
        }
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Port::Range { min, max } if min == max => s.serialize_u16(*min),
            other => s.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a port number, a range \"min:max\" or a port name")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                u16::try_from(v)
                    .map(Port::single)
                    .map_err(|_| E::custom(format!("port number {v} is out of range 0-65535")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("port number {v} is out of range 0-65535")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Port::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Ports as one line of text for an error's value: `[80, 8080:8090, http]`.
pub(crate) fn list_text(ports: &[Port]) -> String {
    let items: Vec<String> = ports.iter().map(ToString::to_string).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Port, serde_json::Error> {
        serde_json::from_str(json)
    }

    fn write(p: &Port) -> String {
        serde_json::to_string(p).unwrap()
    }

    #[test]
    fn forms_read_and_write_as_calico() {
        assert_eq!(read("80").unwrap(), Port::single(80));
        assert_eq!(write(&read("80").unwrap()), "80");
        assert_eq!(
            read("\"8080:8090\"").unwrap(),
            Port::Range {
                min: 8080,
                max: 8090
            }
        );
        assert_eq!(write(&read("\"8080:8090\"").unwrap()), "\"8080:8090\"");
        assert_eq!(read("\"http\"").unwrap(), Port::Named("http".into()));
        assert_eq!(write(&read("\"http\"").unwrap()), "\"http\"");
        // Calico writes a one-port range and a quoted number as the number.
        assert_eq!(write(&read("\"443\"").unwrap()), "443");
        assert_eq!(write(&read("\"443:443\"").unwrap()), "443");
    }

    #[test]
    fn bad_forms_do_not_parse() {
        for bad in [
            "65536",
            "-1",
            "\"90:80\"",
            "\"1:70000\"",
            "\"a b\"",
            "\"\"",
            "\"1:2:3\"",
        ] {
            assert!(read(bad).is_err(), "{bad}");
        }
        assert!(read("\"90:80\"").unwrap_err().to_string().starts_with(
            "minimum port number (90) is greater than maximum port number (80) in port range"
        ));
    }

    #[test]
    fn checks() {
        assert!(Port::single(0).problem().is_some());
        assert!(Port::Range { min: 0, max: 10 }.problem().is_some());
        assert!(Port::single(1).problem().is_none());
        assert!(Port::Named("http-alt".into()).problem().is_none());
        for bad in [
            "HTTP",
            "123",
            "a--b",
            "-a",
            "a-",
            "abcdefghijklmnop",
            "a_b",
            "a.b",
        ] {
            assert!(Port::Named(bad.into()).problem().is_some(), "{bad}");
        }
    }
}
