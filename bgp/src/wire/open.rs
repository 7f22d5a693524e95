//! OPEN (RFC 4271 §4.2): version, AS, hold time, BGP identifier and optional parameters, of
//! which this speaker understands only Capabilities (RFC 5492 §4, parameter type 2).
//!
//! Errors follow RFC 4271 §6.2, with RFC 7607 (AS 0 is a Bad Peer AS) and RFC 6286 (any
//! nonzero identifier is acceptable). Whether the AS is the one configured for the peer, and
//! whether the identifier collides with ours, is for the state machine to decide.

use std::net::Ipv4Addr;

use bytes::{BufMut, BytesMut};
use nom::Parser;
use nom::number::complete::{be_u8, be_u16, be_u32};

use api::asn::Asn;

use super::capability::{self, Capability};
use super::error::{DecodeError, EncodeError};
use super::nlri::Family;
use super::notification::{Notification, OpenError};

/// RFC 4271 §4.2: the only version this speaker speaks.
pub const BGP_VERSION: u8 = 4;
/// RFC 6793 §9: the 2-octet AS sent by a speaker whose AS does not fit in 2 octets.
pub const AS_TRANS: u16 = 23456;
/// RFC 5492 §4.
const PARAM_CAPABILITIES: u8 = 2;

/// An OPEN message, as on the wire: `my_as` is the 2-octet field, which is AS_TRANS when the
/// real AS is larger; [`Open::asn`] gives the real one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Open {
    pub my_as: u16,
    /// Seconds; 0 (no keepalives) or at least 3 (RFC 4271 §4.2).
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// The capabilities of every Capabilities optional parameter, in order.
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// An OPEN for AS `asn`: `my_as` is AS_TRANS when `asn` needs 4 octets, and a 4-octet AS
    /// capability is added (RFC 6793 §4.1) unless `capabilities` already has one.
    pub fn new(
        asn: Asn,
        hold_time: u16,
        bgp_id: Ipv4Addr,
        mut capabilities: Vec<Capability>,
    ) -> Self {
        if !capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
        {
            capabilities.push(Capability::FourOctetAs(asn));
        }
        Open {
            my_as: u16::try_from(asn.0).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities,
        }
    }

    /// The sender's AS: from the 4-octet AS capability when present (RFC 6793 §4.1).
    pub fn asn(&self) -> Asn {
        self.capabilities
            .iter()
            .find_map(|c| match c {
                Capability::FourOctetAs(a) => Some(*a),
                _ => None,
            })
            .unwrap_or(Asn(u32::from(self.my_as)))
    }

    /// Whether the sender supports 4-octet AS numbers (RFC 6793 §3).
    pub fn four_octet_as(&self) -> bool {
        self.capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
    }

    /// The families the sender advertises; IPv4 unicast alone when it sends no multiprotocol
    /// capability (RFC 4760 §8 keeps RFC 4271's implicit IPv4 unicast).
    pub fn families(&self) -> Vec<Family> {
        let fams: Vec<Family> = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol(f) => Some(*f),
                _ => None,
            })
            .collect();
        if fams.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            fams
        }
    }
}

fn open_err(sub: OpenError, data: Vec<u8>, reason: impl Into<String>) -> DecodeError {
    DecodeError::new(Notification::open(sub, data), reason)
}

/// Decodes an OPEN body (after the 19-octet header).
pub fn decode_open(body: &[u8]) -> Result<Open, DecodeError> {
    let parsed: nom::IResult<&[u8], (u8, u16, u16, u32, u8)> =
        (be_u8, be_u16, be_u16, be_u32, be_u8).parse(body);
    let Ok((params, (version, my_as, hold_time, bgp_id, opt_len))) = parsed else {
        return Err(DecodeError::new(
            Notification::header(
                super::notification::HeaderError::BadMessageLength,
                super::header::length_data(body.len() + super::header::HEADER_LEN),
            ),
            "OPEN shorter than 29 octets",
        ));
    };
    // RFC 4271 §6.2: the data is the largest version we support.
    if version != BGP_VERSION {
        return Err(open_err(
            OpenError::UnsupportedVersionNumber,
            u16::from(BGP_VERSION).to_be_bytes().to_vec(),
            format!("peer speaks BGP version {version}"),
        ));
    }
    // RFC 7607 §3: AS 0 in OPEN is a Bad Peer AS.
    if my_as == 0 {
        return Err(open_err(OpenError::BadPeerAs, Vec::new(), "peer AS is 0"));
    }
    // RFC 4271 §6.2: a hold time of 1 or 2 seconds is refused.
    if hold_time == 1 || hold_time == 2 {
        return Err(open_err(
            OpenError::UnacceptableHoldTime,
            Vec::new(),
            format!("hold time {hold_time} s"),
        ));
    }
    // RFC 6286 §2.2: the identifier is any nonzero 4-octet value.
    if bgp_id == 0 {
        return Err(open_err(
            OpenError::BadBgpIdentifier,
            Vec::new(),
            "BGP identifier 0.0.0.0",
        ));
    }
    // RFC 4271 §6.2: a malformed (but recognized) parameter area is Unspecific.
    if params.len() != usize::from(opt_len) {
        return Err(open_err(
            OpenError::Unspecific,
            Vec::new(),
            format!(
                "optional parameters length {opt_len}, but {} octets follow",
                params.len()
            ),
        ));
    }
    let mut capabilities = Vec::new();
    let mut rest = params;
    while let [ptype, plen, tail @ ..] = rest {
        let Some(value) = tail.get(..usize::from(*plen)) else {
            return Err(open_err(
                OpenError::Unspecific,
                Vec::new(),
                "optional parameter runs past the parameters",
            ));
        };
        rest = &tail[usize::from(*plen)..];
        // RFC 4271 §6.2: a parameter type we do not recognize (this includes the RFC 9072
        // extended form, type 255) is Unsupported Optional Parameter.
        if *ptype != PARAM_CAPABILITIES {
            return Err(open_err(
                OpenError::UnsupportedOptionalParameter,
                Vec::new(),
                format!("optional parameter type {ptype}"),
            ));
        }
        let mut caps = value;
        while let [code, clen, ctail @ ..] = caps {
            let Some(cvalue) = ctail.get(..usize::from(*clen)) else {
                return Err(open_err(
                    OpenError::Unspecific,
                    Vec::new(),
                    "capability runs past its optional parameter",
                ));
            };
            caps = &ctail[usize::from(*clen)..];
            let cap = capability::decode(*code, cvalue)
                .map_err(|reason| open_err(OpenError::Unspecific, Vec::new(), reason))?;
            // RFC 7607 §3: a 4-octet AS of 0 is a Bad Peer AS too.
            if cap == Capability::FourOctetAs(Asn(0)) {
                return Err(open_err(
                    OpenError::BadPeerAs,
                    Vec::new(),
                    "4-octet AS capability carries AS 0",
                ));
            }
            capabilities.push(cap);
        }
        if !caps.is_empty() {
            return Err(open_err(
                OpenError::Unspecific,
                Vec::new(),
                "one stray octet after the last capability",
            ));
        }
    }
    if !rest.is_empty() {
        return Err(open_err(
            OpenError::Unspecific,
            Vec::new(),
            "one stray octet after the last optional parameter",
        ));
    }
    Ok(Open {
        my_as,
        hold_time,
        bgp_id: Ipv4Addr::from(bgp_id),
        capabilities,
    })
}

/// Writes an OPEN body. Capabilities go into as few Capabilities parameters as fit 255 octets
/// each (RFC 5492 §4 allows several); decoding flattens them again.
pub(crate) fn encode_open(open: &Open, out: &mut BytesMut) -> Result<(), EncodeError> {
    if open.hold_time == 1 || open.hold_time == 2 {
        return Err(EncodeError::HoldTime(open.hold_time));
    }
    if open.my_as == 0 || open.bgp_id.is_unspecified() {
        return Err(EncodeError::Invalid(
            "OPEN needs a nonzero AS and BGP identifier (RFC 7607, RFC 6286)".into(),
        ));
    }
    let mut params = BytesMut::new();
    let mut param = BytesMut::new();
    for cap in &open.capabilities {
        let mut one = BytesMut::new();
        capability::encode(cap, &mut one)?;
        if one.len() > 255 {
            return Err(EncodeError::FieldTooLong {
                what: "capability in an optional parameter",
                length: one.len(),
            });
        }
        if param.len() + one.len() > 255 {
            flush_param(&mut params, &mut param);
        }
        param.put_slice(&one);
    }
    if !param.is_empty() {
        flush_param(&mut params, &mut param);
    }
    let opt_len = u8::try_from(params.len()).map_err(|_| EncodeError::FieldTooLong {
        what: "OPEN optional parameters",
        length: params.len(),
    })?;
    out.put_u8(BGP_VERSION);
    out.put_u16(open.my_as);
    out.put_u16(open.hold_time);
    out.put_u32(u32::from(open.bgp_id));
    out.put_u8(opt_len);
    out.put_slice(&params);
    Ok(())
}

fn flush_param(params: &mut BytesMut, param: &mut BytesMut) {
    params.put_u8(PARAM_CAPABILITIES);
    // Callers keep a parameter at most 255 octets.
    params.put_u8(u8::try_from(param.len()).unwrap_or(u8::MAX));
    params.put_slice(param);
    param.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::notification::ErrorCode;

    /// AS 65001, hold 90, id 10.0.0.1, capabilities: MP IPv4 unicast, route refresh,
    /// 4-octet AS 65001 (RFC 4271 §4.2, RFC 5492 §4).
    const OPEN: &[u8] = &[
        4, 0xfd, 0xe9, 0, 90, 10, 0, 0, 1, 16, //
        2, 14, 1, 4, 0, 1, 0, 1, 2, 0, 65, 4, 0, 0, 0xfd, 0xe9,
    ];

    #[test]
    fn decodes_and_encodes_rfc4271_4_2_open() {
        let open = decode_open(OPEN).unwrap();
        assert_eq!(open.asn(), Asn(65001));
        assert_eq!(open.hold_time, 90);
        assert_eq!(open.bgp_id, Ipv4Addr::new(10, 0, 0, 1));
        assert!(open.four_octet_as());
        assert_eq!(open.families(), vec![Family::IPV4_UNICAST]);
        let mut out = BytesMut::new();
        encode_open(&open, &mut out).unwrap();
        assert_eq!(&out[..], OPEN);
    }

    #[test]
    fn rfc6793_as_trans_for_a_4_octet_as() {
        let open = Open::new(Asn(4_200_000_001), 180, Ipv4Addr::new(1, 2, 3, 4), vec![]);
        assert_eq!(open.my_as, AS_TRANS);
        assert_eq!(open.asn(), Asn(4_200_000_001));
    }

    #[test]
    fn capabilities_split_over_several_parameters_are_flattened() {
        let body = [4, 0, 1, 0, 0, 1, 1, 1, 1, 8, 2, 2, 2, 0, 2, 4, 65, 2, 0, 0];
        // The second parameter has a truncated capability.
        assert!(decode_open(&body).is_err());
        let body = [4, 0, 1, 0, 0, 1, 1, 1, 1, 6, 2, 2, 2, 0, 2, 0];
        let open = decode_open(&body).unwrap();
        assert_eq!(open.capabilities, vec![Capability::RouteRefresh]);
    }

    fn code_of(body: &[u8]) -> ErrorCode {
        decode_open(body).unwrap_err().notification.code
    }

    #[test]
    fn rfc4271_6_2_errors() {
        let mut b = OPEN.to_vec();
        b[0] = 3;
        assert_eq!(
            code_of(&b),
            ErrorCode::Open(OpenError::UnsupportedVersionNumber)
        );
        assert_eq!(&decode_open(&b).unwrap_err().notification.data[..], &[0, 4]);
        let mut b = OPEN.to_vec();
        b[4] = 2;
        assert_eq!(
            code_of(&b),
            ErrorCode::Open(OpenError::UnacceptableHoldTime)
        );
        let mut b = OPEN.to_vec();
        b[5..9].copy_from_slice(&[0, 0, 0, 0]);
        assert_eq!(code_of(&b), ErrorCode::Open(OpenError::BadBgpIdentifier));
        let mut b = OPEN.to_vec();
        b[1..3].copy_from_slice(&[0, 0]);
        assert_eq!(code_of(&b), ErrorCode::Open(OpenError::BadPeerAs));
        let mut b = OPEN.to_vec();
        b[10] = 1;
        assert_eq!(
            code_of(&b),
            ErrorCode::Open(OpenError::UnsupportedOptionalParameter)
        );
        let mut b = OPEN.to_vec();
        b[9] = 15;
        assert_eq!(code_of(&b), ErrorCode::Open(OpenError::Unspecific));
        // A 3-octet multiprotocol capability.
        let b = [4, 0, 1, 0, 0, 1, 1, 1, 1, 7, 2, 5, 1, 3, 0, 1, 0];
        assert_eq!(code_of(&b), ErrorCode::Open(OpenError::Unspecific));
    }

    #[test]
    fn hold_time_1_is_refused_on_encode() {
        let mut open = decode_open(OPEN).unwrap();
        open.hold_time = 1;
        assert_eq!(
            encode_open(&open, &mut BytesMut::new()),
            Err(EncodeError::HoldTime(1))
        );
    }
}
