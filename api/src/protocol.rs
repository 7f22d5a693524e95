//! `Protocol`: an IP protocol as a name or a number, Calico's `numorstring.Protocol`.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The protocol names Calico's v3 validator accepts (exactly these spellings).
pub const PROTOCOL_NAMES: [&str; 6] = ["TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite"];

/// An IP protocol as written: `TCP`, `UDP`, `ICMP`, `ICMPv6`, `SCTP`, `UDPLite`, or a number.
///
/// As in Calico, a string of digits (`"6"`) reads as the number and is written back as one; a
/// name is kept as written (validation rejects unknown names, so `tcp` parses but does not
/// validate).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Number(u8),
    Name(String),
}

impl Protocol {
    /// The IANA protocol number of a numeric protocol or a known name.
    pub fn number(&self) -> Option<u8> {
        match self {
            Protocol::Number(n) => Some(*n),
            Protocol::Name(n) => match n.as_str() {
                "ICMP" => Some(1),
                "TCP" => Some(6),
                "UDP" => Some(17),
                "ICMPv6" => Some(58),
                "SCTP" => Some(132),
                "UDPLite" => Some(136),
                _ => None,
            },
        }
    }

    /// Whether rules may match ports with this protocol. Calico's `SupportsPorts` says TCP,
    /// UDP and SCTP (6, 17, 132); UDPLite is not among them.
    pub fn supports_ports(&self) -> bool {
        match self {
            Protocol::Number(n) => matches!(n, 6 | 17 | 132),
            Protocol::Name(n) => matches!(n.as_str(), "TCP" | "UDP" | "SCTP"),
        }
    }

    /// ICMP for IPv4: `ICMP` or 1.
    pub fn is_icmp(&self) -> bool {
        matches!(self, Protocol::Number(1)) || matches!(self, Protocol::Name(n) if n == "ICMP")
    }

    /// ICMP for IPv6: `ICMPv6` or 58.
    pub fn is_icmpv6(&self) -> bool {
        matches!(self, Protocol::Number(58)) || matches!(self, Protocol::Name(n) if n == "ICMPv6")
    }

    /// TCP: `TCP` or 6.
    pub fn is_tcp(&self) -> bool {
        matches!(self, Protocol::Number(6)) || matches!(self, Protocol::Name(n) if n == "TCP")
    }

    /// Calico's protocol check: a number 1-255 or one of [`PROTOCOL_NAMES`]. The reason if not.
    pub fn problem(&self) -> Option<&'static str> {
        match self {
            Protocol::Number(0) => Some("protocol number invalid: must be 1-255"),
            Protocol::Number(_) => None,
            Protocol::Name(n) if PROTOCOL_NAMES.contains(&n.as_str()) => None,
            Protocol::Name(_) => Some(
                "protocol name invalid: must be one of TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite \
                 (exactly so spelled) or a number 1-255",
            ),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Number(n) => write!(f, "{n}"),
            Protocol::Name(n) => f.write_str(n),
        }
    }
}

impl From<&str> for Protocol {
    fn from(s: &str) -> Self {
        match s.parse::<u8>() {
            Ok(n) if s.bytes().all(|b| b.is_ascii_digit()) => Protocol::Number(n),
            _ => Protocol::Name(s.to_string()),
        }
    }
}

impl Serialize for Protocol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Protocol::Number(n) => s.serialize_u8(*n),
            Protocol::Name(n) => s.serialize_str(n),
        }
    }
}

impl<'de> Deserialize<'de> for Protocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Protocol;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a protocol name or a number 0-255")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Protocol, E> {
                u8::try_from(v)
                    .map(Protocol::Number)
                    .map_err(|_| E::custom(format!("protocol number {v} is out of range 0-255")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Protocol, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("protocol number {v} is out of range 0-255")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Protocol, E> {
                Ok(Protocol::from(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Protocol, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn names_and_numbers_read_and_write_as_calico() {
        assert_eq!(read("\"TCP\"").unwrap(), Protocol::Name("TCP".into()));
        assert_eq!(read("6").unwrap(), Protocol::Number(6));
        // Calico reads a string of digits as the number and writes the number.
        assert_eq!(read("\"17\"").unwrap(), Protocol::Number(17));
        assert_eq!(serde_json::to_string(&Protocol::Number(17)).unwrap(), "17");
        assert_eq!(
            serde_json::to_string(&Protocol::Name("UDPLite".into())).unwrap(),
            "\"UDPLite\""
        );
        assert!(read("256").is_err());
        assert!(read("-1").is_err());
        assert_eq!(read("\"300\"").unwrap(), Protocol::Name("300".into()));
    }

    #[test]
    fn checks() {
        for ok in [
            "TCP", "UDP", "ICMP", "ICMPv6", "SCTP", "UDPLite", "1", "255",
        ] {
            assert_eq!(Protocol::from(ok).problem(), None, "{ok}");
        }
        for bad in ["0", "tcp", "Tcp", "300", "GRE"] {
            assert!(Protocol::from(bad).problem().is_some(), "{bad}");
        }
    }

    #[test]
    fn ports_only_with_tcp_udp_sctp() {
        for p in ["TCP", "UDP", "SCTP", "6", "17", "132"] {
            assert!(Protocol::from(p).supports_ports(), "{p}");
        }
        for p in ["UDPLite", "136", "ICMP", "1", "ICMPv6", "47"] {
            assert!(!Protocol::from(p).supports_ports(), "{p}");
        }
        assert!(Protocol::from("1").is_icmp() && Protocol::from("ICMP").is_icmp());
        assert!(Protocol::from("58").is_icmpv6() && Protocol::from("ICMPv6").is_icmpv6());
        assert_eq!(Protocol::from("UDPLite").number(), Some(136));
    }
}
