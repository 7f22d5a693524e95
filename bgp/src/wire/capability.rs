//! Capabilities advertised in OPEN (RFC 5492): multiprotocol (RFC 4760 §8), route refresh
//! (RFC 2918 §2), graceful restart (RFC 4724 §3), 4-octet AS (RFC 6793 §3). Any other
//! capability is kept as its code and raw value, so it can be logged and re-encoded unchanged.

use bytes::{BufMut, Bytes, BytesMut};

use api::asn::Asn;

use super::error::EncodeError;
use super::nlri::Family;

pub const CODE_MULTIPROTOCOL: u8 = 1;
pub const CODE_ROUTE_REFRESH: u8 = 2;
pub const CODE_GRACEFUL_RESTART: u8 = 64;
pub const CODE_FOUR_OCTET_AS: u8 = 65;

/// One capability.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Capability {
    /// RFC 4760 §8: the speaker can exchange routes of this family.
    Multiprotocol(Family),
    /// RFC 2918 §2.
    RouteRefresh,
    /// RFC 4724 §3.
    GracefulRestart(GracefulRestart),
    /// RFC 6793 §3: the speaker's real AS number.
    FourOctetAs(Asn),
    /// A capability this codec does not interpret. `code` is never one of the codes above.
    Unknown { code: u8, value: Bytes },
}

/// The Graceful Restart capability (RFC 4724 §3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// The R bit: the sender has restarted (RFC 4724 §3).
    pub restart_state: bool,
    /// The N bit: graceful restart also applies to NOTIFICATIONs (RFC 8538 §2).
    pub notification: bool,
    /// Seconds the peer should keep our routes while we restart; 12 bits, at most 4095.
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

/// A family covered by graceful restart, with its F bit (RFC 4724 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    pub family: Family,
    /// Forwarding state for this family was preserved across the restart.
    pub forwarding_state: bool,
}

const GR_RESTART_STATE: u16 = 0x8000;
const GR_NOTIFICATION: u16 = 0x4000;
const GR_TIME_MASK: u16 = 0x0fff;
const GR_FORWARDING: u8 = 0x80;

/// Decodes one capability's value; `Err` says why a capability we know is malformed, which
/// RFC 4271 §6.2 answers with OPEN Message Error / Unspecific.
pub(crate) fn decode(code: u8, value: &[u8]) -> Result<Capability, String> {
    match code {
        // RFC 4760 §8: AFI (2), reserved (1), SAFI (1).
        CODE_MULTIPROTOCOL => match value {
            [a, b, _, safi] => Ok(Capability::Multiprotocol(Family {
                afi: u16::from_be_bytes([*a, *b]),
                safi: *safi,
            })),
            _ => Err(format!(
                "multiprotocol capability of {} octets, expected 4",
                value.len()
            )),
        },
        // RFC 2918 §2: length 0.
        CODE_ROUTE_REFRESH if value.is_empty() => Ok(Capability::RouteRefresh),
        CODE_ROUTE_REFRESH => Err(format!(
            "route refresh capability of {} octets, expected 0",
            value.len()
        )),
        // RFC 6793 §3: the 4-octet AS number.
        CODE_FOUR_OCTET_AS => match value {
            [a, b, c, d] => Ok(Capability::FourOctetAs(Asn(u32::from_be_bytes([
                *a, *b, *c, *d,
            ])))),
            _ => Err(format!(
                "4-octet AS capability of {} octets, expected 4",
                value.len()
            )),
        },
        // RFC 4724 §3: restart flags and time (2), then AFI (2), SAFI (1), flags (1) per family.
        CODE_GRACEFUL_RESTART => {
            let Some((head, rest)) = value.split_first_chunk::<2>() else {
                return Err("graceful restart capability shorter than 2 octets".into());
            };
            if rest.len() % 4 != 0 {
                return Err(format!(
                    "graceful restart capability of {} octets is not 2 + 4n",
                    value.len()
                ));
            }
            let flags = u16::from_be_bytes(*head);
            let families = rest
                .chunks_exact(4)
                .map(|c| GracefulRestartFamily {
                    family: Family {
                        afi: u16::from_be_bytes([c[0], c[1]]),
                        safi: c[2],
                    },
                    forwarding_state: c[3] & GR_FORWARDING != 0,
                })
                .collect();
            Ok(Capability::GracefulRestart(GracefulRestart {
                restart_state: flags & GR_RESTART_STATE != 0,
                notification: flags & GR_NOTIFICATION != 0,
                restart_time: flags & GR_TIME_MASK,
                families,
            }))
        }
        _ => Ok(Capability::Unknown {
            code,
            value: Bytes::copy_from_slice(value),
        }),
    }
}

/// Writes code, length and value.
pub(crate) fn encode(cap: &Capability, out: &mut BytesMut) -> Result<(), EncodeError> {
    let mut value = BytesMut::new();
    let code = match cap {
        Capability::Multiprotocol(f) => {
            value.put_u16(f.afi);
            value.put_u8(0);
            value.put_u8(f.safi);
            CODE_MULTIPROTOCOL
        }
        Capability::RouteRefresh => CODE_ROUTE_REFRESH,
        Capability::FourOctetAs(asn) => {
            value.put_u32(asn.0);
            CODE_FOUR_OCTET_AS
        }
        Capability::GracefulRestart(gr) => {
            if gr.restart_time > GR_TIME_MASK {
                return Err(EncodeError::Invalid(format!(
                    "graceful restart time {} s does not fit in 12 bits (RFC 4724 §3)",
                    gr.restart_time
                )));
            }
            let mut flags = gr.restart_time;
            if gr.restart_state {
                flags |= GR_RESTART_STATE;
            }
            if gr.notification {
                flags |= GR_NOTIFICATION;
            }
            value.put_u16(flags);
            for f in &gr.families {
                value.put_u16(f.family.afi);
                value.put_u8(f.family.safi);
                value.put_u8(if f.forwarding_state { GR_FORWARDING } else { 0 });
            }
            CODE_GRACEFUL_RESTART
        }
        Capability::Unknown { code, value: v } => {
            if matches!(
                *code,
                CODE_MULTIPROTOCOL
                    | CODE_ROUTE_REFRESH
                    | CODE_GRACEFUL_RESTART
                    | CODE_FOUR_OCTET_AS
            ) {
                return Err(EncodeError::Invalid(format!(
                    "capability code {code} is known; use its variant"
                )));
            }
            value.put_slice(v);
            *code
        }
    };
    let len = u8::try_from(value.len()).map_err(|_| EncodeError::FieldTooLong {
        what: "capability",
        length: value.len(),
    })?;
    out.put_u8(code);
    out.put_u8(len);
    out.put_slice(&value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(cap: Capability, wire: &[u8]) {
        let mut out = BytesMut::new();
        encode(&cap, &mut out).unwrap();
        assert_eq!(&out[..], wire);
        assert_eq!(decode(wire[0], &wire[2..]).unwrap(), cap);
    }

    #[test]
    fn rfc4760_8_multiprotocol_ipv6_unicast() {
        round_trip(
            Capability::Multiprotocol(Family::IPV6_UNICAST),
            &[1, 4, 0, 2, 0, 1],
        );
    }

    #[test]
    fn rfc2918_route_refresh() {
        round_trip(Capability::RouteRefresh, &[2, 0]);
        assert!(decode(2, &[0]).is_err());
    }

    #[test]
    fn rfc6793_four_octet_as() {
        round_trip(
            Capability::FourOctetAs(Asn(4_200_000_000)),
            &[65, 4, 0xfa, 0x56, 0xea, 0x00],
        );
        assert!(decode(65, &[0, 0, 1]).is_err());
    }

    #[test]
    fn rfc4724_3_graceful_restart() {
        round_trip(
            Capability::GracefulRestart(GracefulRestart {
                restart_state: true,
                notification: false,
                restart_time: 120,
                families: vec![
                    GracefulRestartFamily {
                        family: Family::IPV4_UNICAST,
                        forwarding_state: true,
                    },
                    GracefulRestartFamily {
                        family: Family::IPV6_UNICAST,
                        forwarding_state: false,
                    },
                ],
            }),
            &[64, 10, 0x80, 120, 0, 1, 1, 0x80, 0, 2, 1, 0],
        );
        assert!(decode(64, &[0x80]).is_err());
        assert!(decode(64, &[0x80, 0, 0, 1, 1]).is_err());
    }

    #[test]
    fn unknown_capability_is_kept_raw() {
        // RFC 7911 ADD-PATH, which this speaker does not implement.
        round_trip(
            Capability::Unknown {
                code: 69,
                value: Bytes::from_static(&[0, 1, 1, 1]),
            },
            &[69, 4, 0, 1, 1, 1],
        );
    }
}
