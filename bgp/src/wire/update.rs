//! UPDATE (RFC 4271 §4.3): withdrawn IPv4 routes, path attributes, IPv4 NLRI; other families
//! travel in MP_REACH_NLRI/MP_UNREACH_NLRI (RFC 4760).
//!
//! Decoding applies RFC 7606: a malformed UPDATE ends the session only when its routes cannot
//! be located; otherwise the bad attribute is dropped ("attribute discard") or every route in
//! the message is withdrawn ("treat-as-withdraw"), and the session stays up. The outcome is an
//! [`UpdateOutcome`], or a [`DecodeError`] carrying the NOTIFICATION for a session reset.
//!
//! Encoding refuses what decoding would not accept as is (missing mandatory attributes, host
//! bits, 4-octet AS numbers to a 2-octet peer, more than 4096 octets); the `pack_*` methods of
//! [`Codec`] split long route lists over as many UPDATEs as needed.

use std::mem;

use bytes::{BufMut, BytesMut};
use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use super::Codec;
use super::attribute::{
    self, Action, AttributeError, MpReach, MpUnreach, PathAttributes, UnknownAttribute, code, flags,
};
use super::error::{DecodeError, EncodeError};
use super::header::{HEADER_LEN, MAX_MESSAGE_LEN};
use super::nlri::{self, Family};
use super::notification::{Notification, UpdateError};

/// Attributes that only make sense inside an AS (RFC 4271 §5.1.5, RFC 4456 §8).
const IBGP_ONLY: [u8; 3] = [code::LOCAL_PREF, code::ORIGINATOR_ID, code::CLUSTER_LIST];

/// An UPDATE message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Network>,
    pub attributes: PathAttributes,
    pub nlri: Vec<Ipv4Network>,
}

impl Update {
    /// The End-of-RIB marker of a family (RFC 4724 §2): an empty UPDATE for IPv4 unicast, an
    /// UPDATE with only an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(family: Family) -> Option<Update> {
        let mp_unreach = match family {
            Family::IPV4_UNICAST => return Some(Update::default()),
            Family::IPV6_UNICAST => MpUnreach::Ipv6Unicast(Vec::new()),
            _ => return None,
        };
        Some(Update {
            attributes: PathAttributes {
                mp_unreach: Some(mp_unreach),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    /// The family whose End-of-RIB this UPDATE is, if it is one (RFC 4724 §2).
    pub fn end_of_rib_family(&self) -> Option<Family> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() {
            return None;
        }
        if self.attributes.is_empty() {
            return Some(Family::IPV4_UNICAST);
        }
        let only_unreach = PathAttributes {
            mp_unreach: self.attributes.mp_unreach.clone(),
            ..Default::default()
        };
        match &self.attributes.mp_unreach {
            Some(u) if u.prefixes().is_empty() && only_unreach == self.attributes => {
                Some(u.family())
            }
            _ => None,
        }
    }

    /// Every prefix the UPDATE withdraws, in the withdrawn field and in MP_UNREACH_NLRI.
    pub fn withdrawn_prefixes(&self) -> Vec<IpNetwork> {
        let mut out: Vec<IpNetwork> = self.withdrawn.iter().map(|p| (*p).into()).collect();
        if let Some(u) = &self.attributes.mp_unreach {
            out.extend(u.prefixes());
        }
        out
    }

    /// Every prefix the UPDATE announces, in the NLRI field and in MP_REACH_NLRI.
    pub fn announced_prefixes(&self) -> Vec<IpNetwork> {
        let mut out: Vec<IpNetwork> = self.nlri.iter().map(|p| (*p).into()).collect();
        if let Some(r) = &self.attributes.mp_reach {
            out.extend(r.prefixes());
        }
        out
    }
}

/// What a received UPDATE means under RFC 7606 §2, when the session survives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Well-formed.
    Accept(Update),
    /// "Attribute discard": `update` is the message without the attributes in `discarded`
    /// (also duplicates, RFC 7606 §3 g, and AS4 attributes from a 4-octet peer, RFC 6793 §6).
    AttributeDiscard {
        update: Update,
        discarded: Vec<AttributeError>,
    },
    /// "Treat-as-withdraw": every prefix the message withdraws or announces, in any field, is
    /// to be withdrawn.
    TreatAsWithdraw {
        withdrawn: Vec<IpNetwork>,
        errors: Vec<AttributeError>,
    },
}

fn reset(subcode: UpdateError, data: &[u8], reason: impl Into<String>) -> DecodeError {
    DecodeError::new(Notification::update(subcode, data.to_vec()), reason)
}

fn split_u16(buf: &[u8]) -> Option<(usize, &[u8])> {
    let (n, rest) = buf.split_first_chunk::<2>()?;
    Some((usize::from(u16::from_be_bytes(*n)), rest))
}

/// Decodes an UPDATE body (after the 19-octet header).
pub fn decode_update(body: &[u8], codec: &Codec) -> Result<UpdateOutcome, DecodeError> {
    // RFC 4271 §6.3: if Withdrawn Routes Length + Total Attribute Length + 23 exceeds the
    // message length, the NLRI cannot be found: Malformed Attribute List, session reset.
    let too_long = || {
        reset(
            UpdateError::MalformedAttributeList,
            &[],
            "withdrawn routes and attributes run past the message",
        )
    };
    let (wlen, rest) = split_u16(body).ok_or_else(too_long)?;
    let (withdrawn, rest) = (rest.get(..wlen), rest.get(wlen..));
    let (Some(withdrawn), Some(rest)) = (withdrawn, rest) else {
        return Err(too_long());
    };
    let (alen, rest) = split_u16(rest).ok_or_else(too_long)?;
    let (Some(mut attr_bytes), Some(nlri_bytes)) = (rest.get(..alen), rest.get(alen..)) else {
        return Err(too_long());
    };
    // RFC 7606 §5.3: a syntactically incorrect withdrawn routes or NLRI field is a session
    // reset; RFC 4271 §6.3 names the subcode Invalid Network Field.
    let withdrawn = nlri::decode_v4(withdrawn).map_err(|e| {
        reset(
            UpdateError::InvalidNetworkField,
            &[],
            format!("withdrawn routes: {}", e.0),
        )
    })?;
    let nlri = nlri::decode_v4(nlri_bytes).map_err(|e| {
        reset(
            UpdateError::InvalidNetworkField,
            &[],
            format!("NLRI: {}", e.0),
        )
    })?;

    let four = codec.four_octet_as;
    let mut attrs = PathAttributes::default();
    let mut errors = Vec::new();
    let mut seen = [false; 256];
    let error = |type_code, action, subcode, reason: String| AttributeError {
        type_code,
        action,
        subcode,
        reason,
    };
    while !attr_bytes.is_empty() {
        let (fl, tc, len, hlen) = match *attr_bytes {
            [fl, tc, a, b, ..] if fl & flags::EXTENDED_LENGTH != 0 => {
                (fl, tc, usize::from(u16::from_be_bytes([a, b])), 4)
            }
            [fl, tc, l, ..] if fl & flags::EXTENDED_LENGTH == 0 => (fl, tc, usize::from(l), 3),
            _ => {
                // RFC 7606 §4: fewer than 3 (4 with Extended Length) octets left.
                errors.push(error(
                    0,
                    Action::TreatAsWithdraw,
                    UpdateError::MalformedAttributeList,
                    format!("{} stray octets after the last attribute", attr_bytes.len()),
                ));
                break;
            }
        };
        let Some(whole) = attr_bytes.get(..hlen + len) else {
            // RFC 7606 §3 h: an MP attribute that cannot be parsed leaves its routes unknown,
            // so only a session reset is safe.
            if tc == code::MP_REACH_NLRI || tc == code::MP_UNREACH_NLRI {
                return Err(reset(
                    UpdateError::AttributeLengthError,
                    attr_bytes,
                    format!("attribute {tc} runs past the attributes"),
                ));
            }
            // RFC 7606 §4: an attribute overrunning Total Attribute Length: treat-as-withdraw,
            // the NLRI being located by Total Attribute Length.
            errors.push(error(
                tc,
                Action::TreatAsWithdraw,
                UpdateError::AttributeLengthError,
                format!("attribute {tc} of {len} octets runs past the attributes"),
            ));
            break;
        };
        attr_bytes = &attr_bytes[hlen + len..];
        let value = &whole[hlen..];
        let mp = tc == code::MP_REACH_NLRI || tc == code::MP_UNREACH_NLRI;

        // RFC 7606 §3 g: a repeated MP attribute is Malformed Attribute List; any other
        // repeat is discarded, the first occurrence kept.
        if mem::replace(&mut seen[usize::from(tc)], true) {
            if mp {
                return Err(reset(
                    UpdateError::MalformedAttributeList,
                    &[],
                    format!("attribute {tc} appears twice"),
                ));
            }
            errors.push(error(
                tc,
                Action::AttributeDiscard,
                UpdateError::MalformedAttributeList,
                format!("attribute {tc} appears more than once"),
            ));
            continue;
        }

        let Some(want) = attribute::expected_flags(tc) else {
            if fl & flags::OPTIONAL == 0 {
                // RFC 4271 §6.3: an unrecognized well-known attribute, with it as data.
                return Err(reset(
                    UpdateError::UnrecognizedWellKnownAttribute,
                    whole,
                    format!("unrecognized well-known attribute {tc}"),
                ));
            }
            // RFC 4271 §5: unknown optional transitive attributes are passed on (with the
            // Partial bit); unknown optional non-transitive ones are quietly ignored.
            if fl & flags::TRANSITIVE != 0 {
                attrs.unknown.push(UnknownAttribute {
                    type_code: tc,
                    value: bytes::Bytes::copy_from_slice(value),
                });
            }
            continue;
        };
        // RFC 7606 §7.5, §7.9, §7.10: from an external peer these are discarded, whatever
        // their form (RFC 4271 §5.1.5: LOCAL_PREF is not sent over eBGP).
        if codec.external && IBGP_ONLY.contains(&tc) {
            errors.push(error(
                tc,
                Action::AttributeDiscard,
                UpdateError::MalformedAttributeList,
                format!("attribute {tc} from an external peer"),
            ));
            continue;
        }
        if fl & (flags::OPTIONAL | flags::TRANSITIVE) != want {
            // RFC 7606 §3 c: wrong Optional/Transitive bits: treat-as-withdraw, except where
            // the attribute's own rule says otherwise (RFC 6793 §6: AS4 ones are discarded).
            let action = if tc == code::AS4_PATH || tc == code::AS4_AGGREGATOR {
                Action::AttributeDiscard
            } else {
                Action::TreatAsWithdraw
            };
            errors.push(error(
                tc,
                action,
                UpdateError::AttributeFlagsError,
                format!("attribute {tc} with flags {fl:#04x}"),
            ));
            // The routes of an MP attribute are still needed to withdraw them (§3 h).
            if !mp {
                continue;
            }
        }
        match attribute::decode_known(tc, value, four, &mut attrs) {
            Ok(true) => {}
            Ok(false) => errors.push(error(
                tc,
                Action::AttributeDiscard,
                UpdateError::OptionalAttributeError,
                format!("attribute {tc} for a family this speaker does not carry"),
            )),
            Err(m) if m.action == Action::SessionReset => {
                return Err(reset(m.subcode, whole, m.reason));
            }
            Err(m) => errors.push(error(tc, m.action, m.subcode, m.reason)),
        }
    }

    // RFC 6793 §6: a NEW speaker discards AS4_PATH and AS4_AGGREGATOR from a NEW speaker.
    if four {
        for (tc, present) in [
            (code::AS4_PATH, attrs.as4_path.take().is_some()),
            (code::AS4_AGGREGATOR, attrs.as4_aggregator.take().is_some()),
        ] {
            if present {
                errors.push(error(
                    tc,
                    Action::AttributeDiscard,
                    UpdateError::OptionalAttributeError,
                    format!("attribute {tc} from a 4-octet AS peer"),
                ));
            }
        }
    }

    // RFC 7606 §3 d: missing well-known mandatory attributes, when the UPDATE carries routes,
    // are treat-as-withdraw. NEXT_HOP is needed only for the NLRI field (RFC 4760 §3).
    if !nlri.is_empty() || attrs.mp_reach.is_some() {
        let mut needed = vec![code::ORIGIN, code::AS_PATH];
        if !nlri.is_empty() {
            needed.push(code::NEXT_HOP);
        }
        for tc in needed {
            if !seen[usize::from(tc)] {
                errors.push(error(
                    tc,
                    Action::TreatAsWithdraw,
                    UpdateError::MissingWellKnownAttribute,
                    format!("missing well-known attribute {tc}"),
                ));
            }
        }
    }

    let update = Update {
        withdrawn,
        attributes: attrs,
        nlri,
    };
    // RFC 7606 §3: with several errors, the strongest approach wins.
    Ok(match errors.iter().map(|e| e.action).max() {
        None => UpdateOutcome::Accept(update),
        Some(Action::AttributeDiscard) => UpdateOutcome::AttributeDiscard {
            update,
            discarded: errors,
        },
        Some(_) => {
            let mut withdrawn = update.withdrawn_prefixes();
            withdrawn.extend(update.announced_prefixes());
            UpdateOutcome::TreatAsWithdraw { withdrawn, errors }
        }
    })
}

/// Writes an UPDATE body.
pub(crate) fn encode_update(
    u: &Update,
    codec: &Codec,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let a = &u.attributes;
    // RFC 4271 §5: ORIGIN and AS_PATH go with any route, NEXT_HOP with the NLRI field
    // (RFC 4760 §3 moves it into MP_REACH_NLRI for other families).
    let announces = !u.nlri.is_empty() || a.mp_reach.is_some();
    if announces && (a.origin.is_none() || a.as_path.is_none()) {
        return Err(EncodeError::Invalid(
            "an UPDATE with routes needs ORIGIN and AS_PATH (RFC 4271 §5)".into(),
        ));
    }
    if !u.nlri.is_empty() && a.next_hop.is_none() {
        return Err(EncodeError::Invalid(
            "an UPDATE with NLRI needs NEXT_HOP (RFC 4271 §5)".into(),
        ));
    }
    if codec.external
        && (a.local_pref.is_some() || a.originator_id.is_some() || !a.cluster_list.is_empty())
    {
        return Err(EncodeError::Invalid(
            "LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST are not sent to an external peer \
             (RFC 4271 §5.1.5, RFC 4456 §8)"
                .into(),
        ));
    }
    let mut withdrawn = BytesMut::new();
    for p in &u.withdrawn {
        nlri::encode_v4(p, &mut withdrawn)?;
    }
    let mut attrs = BytesMut::new();
    attribute::encode_attributes(a, codec.four_octet_as, &mut attrs)?;
    for field in [&withdrawn, &attrs] {
        let len = u16::try_from(field.len()).map_err(|_| EncodeError::TooLong {
            length: field.len() + HEADER_LEN,
        })?;
        out.put_u16(len);
        out.put_slice(field);
    }
    for p in &u.nlri {
        nlri::encode_v4(p, out)?;
    }
    Ok(())
}

impl Codec {
    /// Announces `nlri` with `attributes` (which must not carry MP_REACH_NLRI) in as few
    /// UPDATEs as fit 4096 octets each.
    pub fn pack_announcements(
        &self,
        attributes: &PathAttributes,
        nlri: &[Ipv4Network],
    ) -> Result<Vec<Update>, EncodeError> {
        self.pack(
            nlri,
            |p| p.prefix(),
            |chunk| Update {
                attributes: attributes.clone(),
                nlri: chunk,
                ..Default::default()
            },
        )
    }

    /// Announces the routes of `reach` with `attributes` (whose own MP_REACH_NLRI is
    /// replaced) in as few UPDATEs as fit.
    pub fn pack_mp_announcements(
        &self,
        attributes: &PathAttributes,
        reach: &MpReach,
    ) -> Result<Vec<Update>, EncodeError> {
        let with = |mp_reach: MpReach| Update {
            attributes: PathAttributes {
                mp_reach: Some(mp_reach),
                ..attributes.clone()
            },
            ..Default::default()
        };
        match reach {
            MpReach::Ipv4Unicast { next_hop, nlri } => self.pack(
                nlri,
                |p| p.prefix(),
                |chunk| {
                    with(MpReach::Ipv4Unicast {
                        next_hop: *next_hop,
                        nlri: chunk,
                    })
                },
            ),
            MpReach::Ipv6Unicast {
                next_hop,
                link_local,
                nlri,
            } => self.pack(
                nlri,
                |p| p.prefix(),
                |chunk| {
                    with(MpReach::Ipv6Unicast {
                        next_hop: *next_hop,
                        link_local: *link_local,
                        nlri: chunk,
                    })
                },
            ),
        }
    }

    /// Withdraws `prefixes` in as few UPDATEs as fit: IPv4 in the withdrawn routes field,
    /// IPv6 in MP_UNREACH_NLRI.
    pub fn pack_withdrawals(&self, prefixes: &[IpNetwork]) -> Result<Vec<Update>, EncodeError> {
        let v4: Vec<Ipv4Network> = prefixes
            .iter()
            .filter_map(|p| match p {
                IpNetwork::V4(n) => Some(*n),
                IpNetwork::V6(_) => None,
            })
            .collect();
        let v6: Vec<Ipv6Network> = prefixes
            .iter()
            .filter_map(|p| match p {
                IpNetwork::V6(n) => Some(*n),
                IpNetwork::V4(_) => None,
            })
            .collect();
        let mut out = self.pack(
            &v4,
            |p| p.prefix(),
            |chunk| Update {
                withdrawn: chunk,
                ..Default::default()
            },
        )?;
        out.extend(self.pack(
            &v6,
            |p| p.prefix(),
            |chunk| Update {
                attributes: PathAttributes {
                    mp_unreach: Some(MpUnreach::Ipv6Unicast(chunk)),
                    ..Default::default()
                },
                ..Default::default()
            },
        )?);
        Ok(out)
    }

    /// Greedy packing: the size of an UPDATE grows by exactly the encoded size of each
    /// prefix, plus at most 1 octet when an MP attribute switches to Extended Length.
    fn pack<P: Copy>(
        &self,
        prefixes: &[P],
        bits: impl Fn(&P) -> u8,
        build: impl Fn(Vec<P>) -> Update,
    ) -> Result<Vec<Update>, EncodeError> {
        if prefixes.is_empty() {
            return Ok(Vec::new());
        }
        let base = self
            .encode_to_bytes(&super::Message::Update(build(Vec::new())))?
            .len()
            + 1;
        let mut out = Vec::new();
        let mut chunk = Vec::new();
        let mut len = base;
        for p in prefixes {
            let n = nlri::encoded_len(bits(p));
            if len + n > MAX_MESSAGE_LEN && !chunk.is_empty() {
                out.push(build(mem::take(&mut chunk)));
                len = base;
            }
            chunk.push(*p);
            len += n;
        }
        out.push(build(chunk));
        // Checks host bits and sizes once more with the real encoder.
        for u in &out {
            self.encode_to_bytes(&super::Message::Update(u.clone()))?;
        }
        Ok(out)
    }
}
