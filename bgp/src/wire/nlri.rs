//! Address families and prefixes as NLRI encodes them (RFC 4271 §4.3, RFC 4760 §5): a length
//! in bits followed by just enough octets to hold it.
//!
//! RFC 4271 §4.3 says the trailing bits of the last octet are irrelevant, so a received prefix
//! has them cleared; we never send them set ([`EncodeError::HostBits`]). A length longer than
//! the address family allows, or octets that run past the field, make the field syntactically
//! incorrect (RFC 7606 §5.3), which the UPDATE decoder turns into a session reset.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnetwork::{Ipv4Network, Ipv6Network};

use super::error::EncodeError;

/// An AFI/SAFI pair (RFC 4760 §3, IANA registries). Kept as numbers so that a family we do
/// not implement still round-trips in capabilities and ROUTE-REFRESH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: u16,
    pub safi: u8,
}

impl Family {
    pub const AFI_IPV4: u16 = 1;
    pub const AFI_IPV6: u16 = 2;
    pub const SAFI_UNICAST: u8 = 1;
    pub const IPV4_UNICAST: Family = Family {
        afi: Family::AFI_IPV4,
        safi: Family::SAFI_UNICAST,
    };
    pub const IPV6_UNICAST: Family = Family {
        afi: Family::AFI_IPV6,
        safi: Family::SAFI_UNICAST,
    };
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi {afi}/safi {safi}"),
        }
    }
}

/// Why a run of prefixes is syntactically incorrect (RFC 7606 §5.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NlriError(pub String);

/// Reads a run of prefixes of addresses at most `max_bits` long, returning (bits, address
/// octets padded to 16) with the trailing bits cleared.
fn decode_raw(mut buf: &[u8], max_bits: u8) -> Result<Vec<(u8, [u8; 16])>, NlriError> {
    let mut out = Vec::new();
    while let [bits, rest @ ..] = buf {
        let bits = *bits;
        if bits > max_bits {
            return Err(NlriError(format!(
                "prefix length {bits} exceeds {max_bits}"
            )));
        }
        let octets = usize::from(bits).div_ceil(8);
        let Some(addr) = rest.get(..octets) else {
            return Err(NlriError(format!(
                "prefix of length {bits} needs {octets} octets, {} remain",
                rest.len()
            )));
        };
        let mut full = [0u8; 16];
        full[..octets].copy_from_slice(addr);
        // RFC 4271 §4.3: "the value of trailing bits is irrelevant".
        if bits % 8 != 0 {
            full[octets - 1] &= 0xffu8 << (8 - bits % 8);
        }
        out.push((bits, full));
        buf = &rest[octets..];
    }
    Ok(out)
}

pub(crate) fn decode_v4(buf: &[u8]) -> Result<Vec<Ipv4Network>, NlriError> {
    decode_raw(buf, 32)?
        .into_iter()
        .map(|(bits, a)| {
            Ipv4Network::new(Ipv4Addr::new(a[0], a[1], a[2], a[3]), bits)
                .map_err(|e| NlriError(e.to_string()))
        })
        .collect()
}

pub(crate) fn decode_v6(buf: &[u8]) -> Result<Vec<Ipv6Network>, NlriError> {
    decode_raw(buf, 128)?
        .into_iter()
        .map(|(bits, a)| {
            Ipv6Network::new(Ipv6Addr::from(a), bits).map_err(|e| NlriError(e.to_string()))
        })
        .collect()
}

/// Octets a prefix of `bits` takes on the wire.
pub(crate) fn encoded_len(bits: u8) -> usize {
    1 + usize::from(bits).div_ceil(8)
}

fn encode_raw(bits: u8, addr: &[u8], out: &mut BytesMut) {
    out.put_u8(bits);
    out.put_slice(&addr[..usize::from(bits).div_ceil(8)]);
}

pub(crate) fn encode_v4(p: &Ipv4Network, out: &mut BytesMut) -> Result<(), EncodeError> {
    if p.network() != p.ip() {
        return Err(EncodeError::HostBits(p.to_string()));
    }
    encode_raw(p.prefix(), &p.ip().octets(), out);
    Ok(())
}

pub(crate) fn encode_v6(p: &Ipv6Network, out: &mut BytesMut) -> Result<(), EncodeError> {
    if p.network() != p.ip() {
        return Err(EncodeError::HostBits(p.to_string()));
    }
    encode_raw(p.prefix(), &p.ip().octets(), out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4271_4_3_prefix_encoding() {
        let got = decode_v4(&[0, 8, 10, 24, 192, 168, 1, 32, 10, 0, 0, 1]).unwrap();
        let want: Vec<Ipv4Network> = ["0.0.0.0/0", "10.0.0.0/8", "192.168.1.0/24", "10.0.0.1/32"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn rfc4271_4_3_trailing_bits_are_irrelevant() {
        // 10.1.0.0/9 sent as 0x0a 0xff: the low 7 bits of the second octet are host bits.
        let got = decode_v4(&[9, 10, 0xff]).unwrap();
        assert_eq!(got, vec!["10.128.0.0/9".parse::<Ipv4Network>().unwrap()]);
    }

    #[test]
    fn rfc7606_5_3_length_beyond_family_or_field() {
        assert!(decode_v4(&[33, 1, 2, 3, 4, 5]).is_err());
        assert!(decode_v4(&[24, 10, 0]).is_err());
        assert!(decode_v6(&[129]).is_err());
        assert!(decode_v6(&[64, 0x20, 0x01, 0x0d, 0xb8]).is_err());
    }

    #[test]
    fn ipv6_prefix() {
        let got = decode_v6(&[32, 0x20, 0x01, 0x0d, 0xb8]).unwrap();
        assert_eq!(got, vec!["2001:db8::/32".parse::<Ipv6Network>().unwrap()]);
    }

    #[test]
    fn encode_refuses_host_bits() {
        let mut out = BytesMut::new();
        let p: Ipv4Network = "10.0.0.1/8".parse().unwrap();
        assert!(matches!(
            encode_v4(&p, &mut out),
            Err(EncodeError::HostBits(_))
        ));
    }
}
