//! ROUTE-REFRESH (RFC 2918 §3): asks the peer to send its Adj-RIB-Out for one family again.
//! The octet between AFI and SAFI, reserved in RFC 2918, is the message subtype of RFC 7313
//! §3 (0 normal request, 1 BoRR, 2 EoRR); it is kept so that it round-trips.

use bytes::{BufMut, BytesMut};

use super::error::DecodeError;
use super::nlri::Family;
use super::notification::{ErrorCode, Notification, RouteRefreshError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    /// RFC 7313 §3; 0 for a plain RFC 2918 request.
    pub subtype: u8,
}

impl RouteRefresh {
    pub fn new(family: Family) -> Self {
        RouteRefresh { family, subtype: 0 }
    }
}

/// Decodes a ROUTE-REFRESH body (after the 19-octet header).
pub fn decode_route_refresh(body: &[u8]) -> Result<RouteRefresh, DecodeError> {
    match body {
        [a, b, subtype, safi] => Ok(RouteRefresh {
            family: Family {
                afi: u16::from_be_bytes([*a, *b]),
                safi: *safi,
            },
            subtype: *subtype,
        }),
        // RFC 7313 §5: a body other than 4 octets is Invalid Message Length, with the whole
        // message as data; the header is rebuilt since only the body reaches us.
        _ => {
            let mut data = BytesMut::new();
            data.put_slice(&[0xff; 16]);
            data.put_u16(u16::try_from(body.len() + 19).unwrap_or(u16::MAX));
            data.put_u8(5);
            data.put_slice(body);
            Err(DecodeError::new(
                Notification::new(
                    ErrorCode::RouteRefresh(RouteRefreshError::InvalidMessageLength),
                    data.freeze(),
                ),
                format!("ROUTE-REFRESH body of {} octets, expected 4", body.len()),
            ))
        }
    }
}

pub(crate) fn encode_route_refresh(rr: &RouteRefresh, out: &mut BytesMut) {
    out.put_u16(rr.family.afi);
    out.put_u8(rr.subtype);
    out.put_u8(rr.family.safi);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2918_3_ipv6_unicast() {
        let rr = decode_route_refresh(&[0, 2, 0, 1]).unwrap();
        assert_eq!(rr, RouteRefresh::new(Family::IPV6_UNICAST));
        let mut out = BytesMut::new();
        encode_route_refresh(&rr, &mut out);
        assert_eq!(&out[..], &[0, 2, 0, 1]);
    }

    #[test]
    fn rfc7313_5_invalid_length() {
        let e = decode_route_refresh(&[0, 1, 0, 1, 0]).unwrap_err();
        assert_eq!(
            e.notification.code,
            ErrorCode::RouteRefresh(RouteRefreshError::InvalidMessageLength)
        );
        assert_eq!(e.notification.data.len(), 24);
    }
}
