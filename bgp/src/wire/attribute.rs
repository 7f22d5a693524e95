//! Path attributes (RFC 4271 §4.3, §5) and the ones added since: COMMUNITIES (RFC 1997),
//! ORIGINATOR_ID and CLUSTER_LIST (RFC 4456), MP_REACH_NLRI and MP_UNREACH_NLRI (RFC 4760),
//! EXTENDED COMMUNITIES (RFC 4360), AS4_PATH and AS4_AGGREGATOR (RFC 6793), LARGE_COMMUNITY
//! (RFC 8092).
//!
//! Each attribute's value is checked here and a malformed one is classified by the RFC 7606
//! §7 rule for it ([`Action`]); the UPDATE decoder combines those verdicts. AS_PATH and
//! AGGREGATOR carry 2- or 4-octet AS numbers depending on whether 4-octet AS was negotiated
//! (RFC 6793 §4); [`PathAttributes::merge_as4`] and [`PathAttributes::for_two_octet_peer`]
//! convert between the two worlds (RFC 6793 §4.2.2, §4.2.3).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use ipnetwork::{Ipv4Network, Ipv6Network};

use api::asn::Asn;

use super::error::EncodeError;
use super::nlri::{self, Family};
use super::notification::UpdateError;
use super::open::AS_TRANS;

/// Attribute flag bits (RFC 4271 §4.3).
pub mod flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes (IANA "BGP Path Attributes").
pub mod code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const LARGE_COMMUNITY: u8 = 32;
}

/// The RFC 7606 §2 approaches, weakest first, so that `max` picks the one RFC 7606 §3 says to
/// use when several attributes are malformed ("the approach with the strongest action").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Drop the attribute, keep the routes.
    AttributeDiscard,
    /// Keep the session, withdraw every route the UPDATE carries.
    TreatAsWithdraw,
    /// Send a NOTIFICATION and close the session.
    SessionReset,
}

/// What was wrong with one attribute of a received UPDATE, and what RFC 7606 says to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttributeError {
    pub type_code: u8,
    pub action: Action,
    /// The subcode a NOTIFICATION would carry (RFC 4271 §6.3), used on session reset.
    pub subcode: UpdateError,
    pub reason: String,
}

/// ORIGIN (RFC 4271 §4.3 a).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH segment types (RFC 4271 §4.3 b, RFC 5065 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

impl SegmentType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        })
    }

    fn is_confed(self) -> bool {
        matches!(self, SegmentType::ConfedSequence | SegmentType::ConfedSet)
    }
}

/// One AS_PATH segment: 1 to 255 AS numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentType,
    pub asns: Vec<Asn>,
}

/// AS_PATH or AS4_PATH.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE (empty when `asns` is).
    pub fn sequence(asns: impl IntoIterator<Item = Asn>) -> Self {
        let asns: Vec<Asn> = asns.into_iter().collect();
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// The path length of RFC 4271 §9.1.2.2 a, also used by RFC 6793 §4.2.3: an AS_SET
    /// counts as 1, confederation segments count 0 (RFC 5065 §5.3).
    pub fn path_length(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                _ => 0,
            })
            .sum()
    }

    fn max_asn(&self) -> u32 {
        self.segments
            .iter()
            .flat_map(|s| s.asns.iter())
            .map(|a| a.0)
            .max()
            .unwrap_or(0)
    }
}

/// AGGREGATOR or AS4_AGGREGATOR (RFC 4271 §4.3 g).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: Asn,
    pub address: Ipv4Addr,
}

/// A community (RFC 1997).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    /// RFC 8326.
    pub const GRACEFUL_SHUTDOWN: Community = Community(0xffff_0000);
    /// RFC 7611.
    pub const ACCEPT_OWN: Community = Community(0xffff_0001);
    /// RFC 9494.
    pub const LLGR_STALE: Community = Community(0xffff_0006);
    /// RFC 9494.
    pub const NO_LLGR: Community = Community(0xffff_0007);
    /// RFC 7999.
    pub const BLACKHOLE: Community = Community(0xffff_029a);
    /// RFC 1997.
    pub const NO_EXPORT: Community = Community(0xffff_ff01);
    /// RFC 1997.
    pub const NO_ADVERTISE: Community = Community(0xffff_ff02);
    /// RFC 1997.
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xffff_ff03);
    /// RFC 3765.
    pub const NOPEER: Community = Community(0xffff_ff04);

    /// The IANA name of a well-known community.
    pub fn well_known_name(self) -> Option<&'static str> {
        Some(match self {
            Community::GRACEFUL_SHUTDOWN => "GRACEFUL_SHUTDOWN",
            Community::ACCEPT_OWN => "ACCEPT_OWN",
            Community::LLGR_STALE => "LLGR_STALE",
            Community::NO_LLGR => "NO_LLGR",
            Community::BLACKHOLE => "BLACKHOLE",
            Community::NO_EXPORT => "NO_EXPORT",
            Community::NO_ADVERTISE => "NO_ADVERTISE",
            Community::NO_EXPORT_SUBCONFED => "NO_EXPORT_SUBCONFED",
            Community::NOPEER => "NOPEER",
            _ => return None,
        })
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.well_known_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff),
        }
    }
}

/// An extended community (RFC 4360 §2), kept as its 8 octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

impl ExtendedCommunity {
    /// The type octet (high) and, for regular types, the sub-type (RFC 4360 §2).
    pub fn type_and_subtype(self) -> (u8, u8) {
        (self.0[0], self.0[1])
    }

    /// RFC 4360 §2: the T bit of the type octet is 0 for transitive communities.
    pub fn is_transitive(self) -> bool {
        self.0[0] & 0x40 == 0
    }

    /// A 2-octet-AS route target (RFC 4360 §4, type 0x00 sub-type 0x02).
    pub fn route_target(asn: u16, value: u32) -> Self {
        let [a, b] = asn.to_be_bytes();
        let [c, d, e, g] = value.to_be_bytes();
        ExtendedCommunity([0x00, 0x02, a, b, c, d, e, g])
    }
}

/// A large community (RFC 8092 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global_admin: u32,
    pub local_data_1: u32,
    pub local_data_2: u32,
}

/// MP_REACH_NLRI (RFC 4760 §3) for the families this speaker carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MpReach {
    Ipv4Unicast {
        next_hop: Ipv4Addr,
        nlri: Vec<Ipv4Network>,
    },
    /// RFC 2545 §3: the next hop is a global address, optionally followed by a link-local one.
    Ipv6Unicast {
        next_hop: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
        nlri: Vec<Ipv6Network>,
    },
}

impl MpReach {
    pub fn family(&self) -> Family {
        match self {
            MpReach::Ipv4Unicast { .. } => Family::IPV4_UNICAST,
            MpReach::Ipv6Unicast { .. } => Family::IPV6_UNICAST,
        }
    }

    pub fn prefixes(&self) -> Vec<ipnetwork::IpNetwork> {
        match self {
            MpReach::Ipv4Unicast { nlri, .. } => nlri.iter().map(|p| (*p).into()).collect(),
            MpReach::Ipv6Unicast { nlri, .. } => nlri.iter().map(|p| (*p).into()).collect(),
        }
    }
}

/// MP_UNREACH_NLRI (RFC 4760 §4). Empty, it is the End-of-RIB marker of its family
/// (RFC 4724 §2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MpUnreach {
    Ipv4Unicast(Vec<Ipv4Network>),
    Ipv6Unicast(Vec<Ipv6Network>),
}

impl MpUnreach {
    pub fn family(&self) -> Family {
        match self {
            MpUnreach::Ipv4Unicast(_) => Family::IPV4_UNICAST,
            MpUnreach::Ipv6Unicast(_) => Family::IPV6_UNICAST,
        }
    }

    pub fn prefixes(&self) -> Vec<ipnetwork::IpNetwork> {
        match self {
            MpUnreach::Ipv4Unicast(v) => v.iter().map(|p| (*p).into()).collect(),
            MpUnreach::Ipv6Unicast(v) => v.iter().map(|p| (*p).into()).collect(),
        }
    }
}

/// An optional transitive attribute this codec does not know. RFC 4271 §5: it is passed on
/// with the Partial bit set, which is how it is always encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownAttribute {
    pub type_code: u8,
    pub value: Bytes,
}

/// The path attributes of an UPDATE. An empty list stands for an absent list attribute
/// (an empty COMMUNITIES is malformed anyway, RFC 7606 §7.8).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    pub extended_communities: Vec<ExtendedCommunity>,
    pub as4_path: Option<AsPath>,
    pub as4_aggregator: Option<Aggregator>,
    pub large_communities: Vec<LargeCommunity>,
    pub unknown: Vec<UnknownAttribute>,
}

impl PathAttributes {
    /// Whether any attribute is present.
    pub fn is_empty(&self) -> bool {
        *self == PathAttributes::default()
    }

    /// RFC 6793 §4.2.3: from a 2-octet peer, the real AS_PATH and AGGREGATOR are rebuilt from
    /// AS_PATH/AS4_PATH and AGGREGATOR/AS4_AGGREGATOR, and the AS4 attributes removed.
    pub fn merge_as4(mut self) -> Self {
        let as4_path = self.as4_path.take();
        let as4_aggregator = self.as4_aggregator.take();
        // "If the AGGREGATOR attribute ... contains an AS number other than AS_TRANS, then
        // the AS4_AGGREGATOR and AS4_PATH attributes ... SHALL be ignored".
        if let Some(agg) = self.aggregator
            && agg.asn != Asn(u32::from(AS_TRANS))
        {
            return self;
        }
        if let Some(a4) = as4_aggregator
            && self.aggregator.is_some()
        {
            self.aggregator = Some(a4);
        }
        if let (Some(path), Some(as4)) = (&self.as_path, as4_path) {
            self.as_path = Some(merge_paths(path, &as4));
        }
        self
    }

    /// RFC 6793 §4.2.2: what a NEW speaker sends to an OLD (2-octet) one. AS numbers above
    /// 65535 become AS_TRANS in AS_PATH and AGGREGATOR, and the real ones go in AS4_PATH
    /// (without confederation segments) and AS4_AGGREGATOR.
    pub fn for_two_octet_peer(&self) -> Self {
        let mut out = self.clone();
        let trans = |a: Asn| {
            if a.0 > 0xffff {
                Asn(u32::from(AS_TRANS))
            } else {
                a
            }
        };
        out.as4_path = None;
        out.as4_aggregator = None;
        if let Some(path) = &self.as_path
            && path.max_asn() > 0xffff
        {
            out.as_path = Some(AsPath {
                segments: path
                    .segments
                    .iter()
                    .map(|s| AsSegment {
                        kind: s.kind,
                        asns: s.asns.iter().map(|a| trans(*a)).collect(),
                    })
                    .collect(),
            });
            out.as4_path = Some(AsPath {
                segments: path
                    .segments
                    .iter()
                    .filter(|s| !s.kind.is_confed())
                    .cloned()
                    .collect(),
            });
        }
        if let Some(agg) = self.aggregator
            && agg.asn.0 > 0xffff
        {
            out.aggregator = Some(Aggregator {
                asn: trans(agg.asn),
                address: agg.address,
            });
            out.as4_aggregator = Some(agg);
        }
        out
    }
}

/// RFC 6793 §4.2.3: if AS_PATH is shorter than AS4_PATH, AS4_PATH is ignored; otherwise the
/// leading ASes of AS_PATH that AS4_PATH lacks (added by OLD speakers) are put in front of it.
fn merge_paths(path: &AsPath, as4: &AsPath) -> AsPath {
    let (n, m) = (path.path_length(), as4.path_length());
    if n < m {
        return path.clone();
    }
    let mut need = n - m;
    let mut segments = Vec::new();
    for seg in &path.segments {
        // Confederation segments count 0 and are kept where they stand (they are never in
        // AS4_PATH, RFC 6793 §3).
        if need == 0 && !seg.kind.is_confed() {
            break;
        }
        match seg.kind {
            SegmentType::Sequence => {
                let take = need.min(seg.asns.len());
                segments.push(AsSegment {
                    kind: seg.kind,
                    asns: seg.asns[..take].to_vec(),
                });
                need -= take;
            }
            SegmentType::Set => {
                segments.push(seg.clone());
                need -= 1;
            }
            _ => segments.push(seg.clone()),
        }
    }
    segments.extend(as4.segments.iter().cloned());
    AsPath { segments }
}

/// The Optional and Transitive bits each known attribute must carry (RFC 4271 §5, and the
/// RFC defining each attribute).
pub(crate) fn expected_flags(type_code: u8) -> Option<u8> {
    use flags::{OPTIONAL, TRANSITIVE};
    Some(match type_code {
        code::ORIGIN
        | code::AS_PATH
        | code::NEXT_HOP
        | code::LOCAL_PREF
        | code::ATOMIC_AGGREGATE => TRANSITIVE,
        code::MULTI_EXIT_DISC
        | code::ORIGINATOR_ID
        | code::CLUSTER_LIST
        | code::MP_REACH_NLRI
        | code::MP_UNREACH_NLRI => OPTIONAL,
        code::AGGREGATOR
        | code::COMMUNITIES
        | code::EXTENDED_COMMUNITIES
        | code::AS4_PATH
        | code::AS4_AGGREGATOR
        | code::LARGE_COMMUNITY => OPTIONAL | TRANSITIVE,
        _ => return None,
    })
}

/// A malformed value: the RFC 7606 approach and the RFC 4271 §6.3 subcode.
pub(crate) struct Malformed {
    pub action: Action,
    pub subcode: UpdateError,
    pub reason: String,
}

fn malformed(action: Action, subcode: UpdateError, reason: impl Into<String>) -> Malformed {
    Malformed {
        action,
        subcode,
        reason: reason.into(),
    }
}

fn u32_of(v: &[u8]) -> Option<u32> {
    v.try_into().ok().map(u32::from_be_bytes)
}

fn decode_as_path(mut v: &[u8], four: bool) -> Result<AsPath, String> {
    let size = if four { 4 } else { 2 };
    let mut segments = Vec::new();
    while !v.is_empty() {
        let [kind, count, rest @ ..] = v else {
            return Err("one octet left after the last segment".into());
        };
        let kind = SegmentType::from_u8(*kind).ok_or(format!("segment type {kind}"))?;
        if *count == 0 {
            return Err("segment of length 0".into());
        }
        let octets = usize::from(*count) * size;
        let Some(body) = rest.get(..octets) else {
            return Err(format!("segment of {count} ASes overruns the attribute"));
        };
        let asns = body
            .chunks_exact(size)
            .map(|c| {
                Asn(if four {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                } else {
                    u32::from(u16::from_be_bytes([c[0], c[1]]))
                })
            })
            .collect();
        segments.push(AsSegment { kind, asns });
        v = &rest[octets..];
    }
    Ok(AsPath { segments })
}

fn decode_aggregator(v: &[u8], four: bool) -> Option<Aggregator> {
    match (four, v) {
        (false, [a, b, addr @ ..]) if addr.len() == 4 => Some(Aggregator {
            asn: Asn(u32::from(u16::from_be_bytes([*a, *b]))),
            address: Ipv4Addr::from(u32_of(addr)?),
        }),
        (true, [a, b, c, d, addr @ ..]) if addr.len() == 4 => Some(Aggregator {
            asn: Asn(u32::from_be_bytes([*a, *b, *c, *d])),
            address: Ipv4Addr::from(u32_of(addr)?),
        }),
        _ => None,
    }
}

/// The value of a list attribute: a non-zero multiple of `size` octets (RFC 7606 §7.8, §7.10,
/// §7.14, RFC 8092 §5), else treat-as-withdraw.
fn chunks(v: &[u8], size: usize, name: &str) -> Result<Vec<Vec<u8>>, Malformed> {
    if v.is_empty() || !v.len().is_multiple_of(size) {
        return Err(malformed(
            Action::TreatAsWithdraw,
            UpdateError::OptionalAttributeError,
            format!(
                "{name} of {} octets is not a non-zero multiple of {size}",
                v.len()
            ),
        ));
    }
    Ok(v.chunks_exact(size).map(<[u8]>::to_vec).collect())
}

fn decode_mp_reach(v: &[u8]) -> Result<Option<MpReach>, Malformed> {
    // RFC 7606 §7.11/§3 h: the MP attributes must parse for treat-as-withdraw to be possible,
    // so a malformed one resets the session.
    let reset = |reason: String| {
        malformed(
            Action::SessionReset,
            UpdateError::OptionalAttributeError,
            reason,
        )
    };
    let [a, b, safi, nh_len, rest @ ..] = v else {
        return Err(reset(format!("MP_REACH_NLRI of {} octets", v.len())));
    };
    let family = Family {
        afi: u16::from_be_bytes([*a, *b]),
        safi: *safi,
    };
    let nh_len = usize::from(*nh_len);
    // RFC 4760 §3: next hop, then one reserved octet (ignored on receipt), then NLRI.
    let (Some(nh), Some(nlri)) = (rest.get(..nh_len), rest.get(nh_len + 1..)) else {
        return Err(reset(
            "MP_REACH_NLRI next hop overruns the attribute".into(),
        ));
    };
    let nh_err = || reset(format!("next hop of {nh_len} octets for {family}"));
    let nlri_err = |e: nlri::NlriError| reset(format!("MP_REACH_NLRI {family}: {}", e.0));
    match family {
        Family::IPV4_UNICAST => {
            let next_hop = Ipv4Addr::from(u32_of(nh).ok_or_else(nh_err)?);
            Ok(Some(MpReach::Ipv4Unicast {
                next_hop,
                nlri: nlri::decode_v4(nlri).map_err(nlri_err)?,
            }))
        }
        Family::IPV6_UNICAST => {
            // RFC 2545 §3: 16 octets global, or 32 octets global then link-local.
            let (next_hop, link_local) = match nh.len() {
                16 => (to_v6(nh), None),
                32 => (to_v6(&nh[..16]), Some(to_v6(&nh[16..]))),
                _ => return Err(nh_err()),
            };
            Ok(Some(MpReach::Ipv6Unicast {
                next_hop,
                link_local,
                nlri: nlri::decode_v6(nlri).map_err(nlri_err)?,
            }))
        }
        _ => Ok(None),
    }
}

fn to_v6(v: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&v[..16]);
    Ipv6Addr::from(a)
}

fn decode_mp_unreach(v: &[u8]) -> Result<Option<MpUnreach>, Malformed> {
    let reset = |reason: String| {
        malformed(
            Action::SessionReset,
            UpdateError::OptionalAttributeError,
            reason,
        )
    };
    let [a, b, safi, withdrawn @ ..] = v else {
        return Err(reset(format!("MP_UNREACH_NLRI of {} octets", v.len())));
    };
    let family = Family {
        afi: u16::from_be_bytes([*a, *b]),
        safi: *safi,
    };
    let nlri_err = |e: nlri::NlriError| reset(format!("MP_UNREACH_NLRI {family}: {}", e.0));
    Ok(match family {
        Family::IPV4_UNICAST => Some(MpUnreach::Ipv4Unicast(
            nlri::decode_v4(withdrawn).map_err(nlri_err)?,
        )),
        Family::IPV6_UNICAST => Some(MpUnreach::Ipv6Unicast(
            nlri::decode_v6(withdrawn).map_err(nlri_err)?,
        )),
        _ => None,
    })
}

/// Decodes the value of a known attribute into `attrs`. `Ok(false)` means the attribute was
/// well-formed but is not kept (an MP attribute of a family this speaker does not carry).
pub(crate) fn decode_known(
    type_code: u8,
    v: &[u8],
    four: bool,
    attrs: &mut PathAttributes,
) -> Result<bool, Malformed> {
    use Action::{AttributeDiscard, TreatAsWithdraw};
    let len_err = |action, subcode, name: &str, want: &str| {
        malformed(
            action,
            subcode,
            format!("{name} of {} octets, expected {want}", v.len()),
        )
    };
    match type_code {
        // RFC 7606 §7.1: wrong length or undefined value: treat-as-withdraw.
        code::ORIGIN => {
            attrs.origin = Some(match v {
                [0] => Origin::Igp,
                [1] => Origin::Egp,
                [2] => Origin::Incomplete,
                [x] => {
                    return Err(malformed(
                        TreatAsWithdraw,
                        UpdateError::InvalidOriginAttribute,
                        format!("ORIGIN value {x}"),
                    ));
                }
                _ => {
                    return Err(len_err(
                        TreatAsWithdraw,
                        UpdateError::AttributeLengthError,
                        "ORIGIN",
                        "1",
                    ));
                }
            });
        }
        // RFC 7606 §7.2: a malformed AS_PATH is treat-as-withdraw.
        code::AS_PATH => {
            attrs.as_path = Some(decode_as_path(v, four).map_err(|r| {
                malformed(
                    TreatAsWithdraw,
                    UpdateError::MalformedAsPath,
                    format!("AS_PATH: {r}"),
                )
            })?);
        }
        // RFC 7606 §7.3: length other than 4 is treat-as-withdraw.
        code::NEXT_HOP => {
            let nh = u32_of(v).ok_or_else(|| {
                len_err(
                    TreatAsWithdraw,
                    UpdateError::AttributeLengthError,
                    "NEXT_HOP",
                    "4",
                )
            })?;
            attrs.next_hop = Some(Ipv4Addr::from(nh));
        }
        // RFC 7606 §7.4.
        code::MULTI_EXIT_DISC => {
            attrs.med = Some(u32_of(v).ok_or_else(|| {
                len_err(
                    TreatAsWithdraw,
                    UpdateError::AttributeLengthError,
                    "MULTI_EXIT_DISC",
                    "4",
                )
            })?);
        }
        // RFC 7606 §7.5 (that an eBGP peer's LOCAL_PREF is discarded is for the peer to apply).
        code::LOCAL_PREF => {
            attrs.local_pref = Some(u32_of(v).ok_or_else(|| {
                len_err(
                    TreatAsWithdraw,
                    UpdateError::AttributeLengthError,
                    "LOCAL_PREF",
                    "4",
                )
            })?);
        }
        // RFC 7606 §7.6: a non-zero length is attribute discard.
        code::ATOMIC_AGGREGATE => {
            if !v.is_empty() {
                return Err(len_err(
                    AttributeDiscard,
                    UpdateError::AttributeLengthError,
                    "ATOMIC_AGGREGATE",
                    "0",
                ));
            }
            attrs.atomic_aggregate = true;
        }
        // RFC 7606 §7.7: length other than 6 (or 8 with 4-octet AS) is attribute discard.
        code::AGGREGATOR => {
            attrs.aggregator = Some(decode_aggregator(v, four).ok_or_else(|| {
                len_err(
                    AttributeDiscard,
                    UpdateError::AttributeLengthError,
                    "AGGREGATOR",
                    if four { "8" } else { "6" },
                )
            })?);
        }
        // RFC 7606 §7.8.
        code::COMMUNITIES => {
            attrs.communities = chunks(v, 4, "COMMUNITIES")?
                .iter()
                .filter_map(|c| u32_of(c).map(Community))
                .collect();
        }
        // RFC 7606 §7.9.
        code::ORIGINATOR_ID => {
            attrs.originator_id = Some(Ipv4Addr::from(u32_of(v).ok_or_else(|| {
                len_err(
                    TreatAsWithdraw,
                    UpdateError::AttributeLengthError,
                    "ORIGINATOR_ID",
                    "4",
                )
            })?));
        }
        // RFC 7606 §7.10.
        code::CLUSTER_LIST => {
            attrs.cluster_list = chunks(v, 4, "CLUSTER_LIST")?
                .iter()
                .filter_map(|c| u32_of(c).map(Ipv4Addr::from))
                .collect();
        }
        // RFC 7606 §7.11.
        code::MP_REACH_NLRI => match decode_mp_reach(v)? {
            Some(r) => attrs.mp_reach = Some(r),
            None => return Ok(false),
        },
        code::MP_UNREACH_NLRI => match decode_mp_unreach(v)? {
            Some(u) => attrs.mp_unreach = Some(u),
            None => return Ok(false),
        },
        // RFC 7606 §7.14.
        code::EXTENDED_COMMUNITIES => {
            attrs.extended_communities = chunks(v, 8, "EXTENDED COMMUNITIES")?
                .iter()
                .filter_map(|c| <[u8; 8]>::try_from(c.as_slice()).ok())
                .map(ExtendedCommunity)
                .collect();
        }
        // RFC 6793 §6: a malformed AS4_PATH (including one with confederation segments,
        // RFC 6793 §3) is discarded, and the AS_PATH used alone.
        code::AS4_PATH => {
            let path = decode_as_path(v, true).map_err(|r| {
                malformed(
                    AttributeDiscard,
                    UpdateError::MalformedAsPath,
                    format!("AS4_PATH: {r}"),
                )
            })?;
            if path.segments.iter().any(|s| s.kind.is_confed()) {
                return Err(malformed(
                    AttributeDiscard,
                    UpdateError::MalformedAsPath,
                    "AS4_PATH with a confederation segment",
                ));
            }
            attrs.as4_path = Some(path);
        }
        // RFC 6793 §6: an AS4_AGGREGATOR not of 8 octets is discarded.
        code::AS4_AGGREGATOR => {
            attrs.as4_aggregator = Some(decode_aggregator(v, true).ok_or_else(|| {
                len_err(
                    AttributeDiscard,
                    UpdateError::AttributeLengthError,
                    "AS4_AGGREGATOR",
                    "8",
                )
            })?);
        }
        // RFC 8092 §5: not a non-zero multiple of 12 is treat-as-withdraw.
        code::LARGE_COMMUNITY => {
            attrs.large_communities = chunks(v, 12, "LARGE_COMMUNITY")?
                .iter()
                .filter_map(|c| {
                    Some(LargeCommunity {
                        global_admin: u32_of(&c[0..4])?,
                        local_data_1: u32_of(&c[4..8])?,
                        local_data_2: u32_of(&c[8..12])?,
                    })
                })
                .collect();
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Writes one attribute, with the Extended Length bit exactly when the value needs it.
fn put_attr(
    out: &mut BytesMut,
    mut fl: u8,
    type_code: u8,
    value: &[u8],
) -> Result<(), EncodeError> {
    if value.len() > usize::from(u16::MAX) {
        return Err(EncodeError::FieldTooLong {
            what: "path attribute",
            length: value.len(),
        });
    }
    if value.len() > 255 {
        fl |= flags::EXTENDED_LENGTH;
        out.put_u8(fl);
        out.put_u8(type_code);
        out.put_u16(value.len() as u16);
    } else {
        fl &= !flags::EXTENDED_LENGTH;
        out.put_u8(fl);
        out.put_u8(type_code);
        out.put_u8(value.len() as u8);
    }
    out.put_slice(value);
    Ok(())
}

fn encode_as_path(path: &AsPath, four: bool, name: &str) -> Result<BytesMut, EncodeError> {
    let mut v = BytesMut::new();
    for seg in &path.segments {
        let count = u8::try_from(seg.asns.len())
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| {
                EncodeError::Invalid(format!(
                    "{name} segment of {} ASes; a segment holds 1 to 255 (RFC 4271 §4.3 b)",
                    seg.asns.len()
                ))
            })?;
        v.put_u8(seg.kind as u8);
        v.put_u8(count);
        for asn in &seg.asns {
            if four {
                v.put_u32(asn.0);
            } else {
                v.put_u16(u16::try_from(asn.0).map_err(|_| EncodeError::AsnTooLarge(asn.0))?);
            }
        }
    }
    Ok(v)
}

fn encode_aggregator(agg: &Aggregator, four: bool) -> Result<BytesMut, EncodeError> {
    let mut v = BytesMut::new();
    if four {
        v.put_u32(agg.asn.0);
    } else {
        v.put_u16(u16::try_from(agg.asn.0).map_err(|_| EncodeError::AsnTooLarge(agg.asn.0))?);
    }
    v.put_u32(u32::from(agg.address));
    Ok(v)
}

pub(crate) fn encode_mp_reach(r: &MpReach) -> Result<BytesMut, EncodeError> {
    let mut v = BytesMut::new();
    let f = r.family();
    v.put_u16(f.afi);
    v.put_u8(f.safi);
    match r {
        MpReach::Ipv4Unicast { next_hop, nlri } => {
            v.put_u8(4);
            v.put_slice(&next_hop.octets());
            v.put_u8(0);
            for p in nlri {
                nlri::encode_v4(p, &mut v)?;
            }
        }
        MpReach::Ipv6Unicast {
            next_hop,
            link_local,
            nlri,
        } => {
            v.put_u8(if link_local.is_some() { 32 } else { 16 });
            v.put_slice(&next_hop.octets());
            if let Some(ll) = link_local {
                v.put_slice(&ll.octets());
            }
            v.put_u8(0);
            for p in nlri {
                nlri::encode_v6(p, &mut v)?;
            }
        }
    }
    Ok(v)
}

fn encode_mp_unreach(u: &MpUnreach) -> Result<BytesMut, EncodeError> {
    let mut v = BytesMut::new();
    let f = u.family();
    v.put_u16(f.afi);
    v.put_u8(f.safi);
    match u {
        MpUnreach::Ipv4Unicast(ps) => {
            for p in ps {
                nlri::encode_v4(p, &mut v)?;
            }
        }
        MpUnreach::Ipv6Unicast(ps) => {
            for p in ps {
                nlri::encode_v6(p, &mut v)?;
            }
        }
    }
    Ok(v)
}

/// Writes the attributes: MP_REACH_NLRI and MP_UNREACH_NLRI first (RFC 7606 §5.1), then the
/// rest by type code, then unknown ones with the Partial bit (RFC 4271 §5).
pub(crate) fn encode_attributes(
    a: &PathAttributes,
    four: bool,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    use flags::{OPTIONAL as O, TRANSITIVE as T};
    if four && (a.as4_path.is_some() || a.as4_aggregator.is_some()) {
        return Err(EncodeError::Invalid(
            "AS4_PATH/AS4_AGGREGATOR are never sent to a 4-octet AS peer (RFC 6793 §4.1)".into(),
        ));
    }
    if let Some(r) = &a.mp_reach {
        put_attr(out, O, code::MP_REACH_NLRI, &encode_mp_reach(r)?)?;
    }
    if let Some(u) = &a.mp_unreach {
        put_attr(out, O, code::MP_UNREACH_NLRI, &encode_mp_unreach(u)?)?;
    }
    if let Some(o) = a.origin {
        put_attr(out, T, code::ORIGIN, &[o as u8])?;
    }
    if let Some(p) = &a.as_path {
        put_attr(out, T, code::AS_PATH, &encode_as_path(p, four, "AS_PATH")?)?;
    }
    if let Some(nh) = a.next_hop {
        put_attr(out, T, code::NEXT_HOP, &nh.octets())?;
    }
    if let Some(med) = a.med {
        put_attr(out, O, code::MULTI_EXIT_DISC, &med.to_be_bytes())?;
    }
    if let Some(lp) = a.local_pref {
        put_attr(out, T, code::LOCAL_PREF, &lp.to_be_bytes())?;
    }
    if a.atomic_aggregate {
        put_attr(out, T, code::ATOMIC_AGGREGATE, &[])?;
    }
    if let Some(agg) = &a.aggregator {
        put_attr(out, O | T, code::AGGREGATOR, &encode_aggregator(agg, four)?)?;
    }
    if !a.communities.is_empty() {
        let v: Vec<u8> = a
            .communities
            .iter()
            .flat_map(|c| c.0.to_be_bytes())
            .collect();
        put_attr(out, O | T, code::COMMUNITIES, &v)?;
    }
    if let Some(id) = a.originator_id {
        put_attr(out, O, code::ORIGINATOR_ID, &id.octets())?;
    }
    if !a.cluster_list.is_empty() {
        let v: Vec<u8> = a.cluster_list.iter().flat_map(|c| c.octets()).collect();
        put_attr(out, O, code::CLUSTER_LIST, &v)?;
    }
    if !a.extended_communities.is_empty() {
        let v: Vec<u8> = a.extended_communities.iter().flat_map(|c| c.0).collect();
        put_attr(out, O | T, code::EXTENDED_COMMUNITIES, &v)?;
    }
    if let Some(p) = &a.as4_path {
        if p.segments.iter().any(|s| s.kind.is_confed()) {
            return Err(EncodeError::Invalid(
                "AS4_PATH never carries confederation segments (RFC 6793 §3)".into(),
            ));
        }
        put_attr(
            out,
            O | T,
            code::AS4_PATH,
            &encode_as_path(p, true, "AS4_PATH")?,
        )?;
    }
    if let Some(agg) = &a.as4_aggregator {
        put_attr(
            out,
            O | T,
            code::AS4_AGGREGATOR,
            &encode_aggregator(agg, true)?,
        )?;
    }
    if !a.large_communities.is_empty() {
        let v: Vec<u8> = a
            .large_communities
            .iter()
            .flat_map(|c| {
                let mut b = [0u8; 12];
                b[..4].copy_from_slice(&c.global_admin.to_be_bytes());
                b[4..8].copy_from_slice(&c.local_data_1.to_be_bytes());
                b[8..].copy_from_slice(&c.local_data_2.to_be_bytes());
                b
            })
            .collect();
        put_attr(out, O | T, code::LARGE_COMMUNITY, &v)?;
    }
    for u in &a.unknown {
        if expected_flags(u.type_code).is_some() {
            return Err(EncodeError::Invalid(format!(
                "attribute type {} is known; use its field",
                u.type_code
            )));
        }
        put_attr(out, O | T | flags::PARTIAL, u.type_code, &u.value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asns(v: &[u32]) -> Vec<Asn> {
        v.iter().map(|a| Asn(*a)).collect()
    }

    fn seq(v: &[u32]) -> AsSegment {
        AsSegment {
            kind: SegmentType::Sequence,
            asns: asns(v),
        }
    }

    #[test]
    fn rfc4271_4_3_as_path_two_and_four_octets() {
        let two = [2, 2, 0xfd, 0xe8, 0xfd, 0xe9, 1, 1, 0, 100];
        let p = decode_as_path(&two, false).unwrap();
        assert_eq!(
            p.segments,
            vec![
                seq(&[65000, 65001]),
                AsSegment {
                    kind: SegmentType::Set,
                    asns: asns(&[100])
                }
            ]
        );
        assert_eq!(p.path_length(), 3);
        assert_eq!(&encode_as_path(&p, false, "AS_PATH").unwrap()[..], &two);
        let four = [3, 1, 0xfa, 0x56, 0xea, 0x00];
        let p = decode_as_path(&four, true).unwrap();
        assert_eq!(p.segments[0].kind, SegmentType::ConfedSequence);
        assert_eq!(p.segments[0].asns, asns(&[4_200_000_000]));
        assert_eq!(p.path_length(), 0);
    }

    #[test]
    fn rfc7606_7_2_malformed_as_paths() {
        // Overrun, single octet left, zero-length segment, unknown type.
        for bad in [&[2, 2, 0, 1][..], &[2, 1, 0, 1, 2], &[2, 0], &[5, 1, 0, 1]] {
            assert!(decode_as_path(bad, false).is_err(), "{bad:?}");
        }
        assert!(decode_as_path(&[2, 1, 0, 1], true).is_err());
        assert_eq!(decode_as_path(&[], false).unwrap(), AsPath::default());
    }

    #[test]
    fn rfc6793_4_2_3_merge_prepends_the_old_speakers_ases() {
        // A NEW speaker (AS 4200000000) sent AS_PATH [23456] + AS4_PATH [4200000000]; then
        // OLD speakers 65002 and 65001 prepended themselves to AS_PATH only.
        let attrs = PathAttributes {
            as_path: Some(AsPath::sequence(asns(&[65001, 65002, 23456]))),
            as4_path: Some(AsPath::sequence(asns(&[4_200_000_000]))),
            aggregator: Some(Aggregator {
                asn: Asn(23456),
                address: Ipv4Addr::new(1, 1, 1, 1),
            }),
            as4_aggregator: Some(Aggregator {
                asn: Asn(4_200_000_000),
                address: Ipv4Addr::new(1, 1, 1, 1),
            }),
            ..Default::default()
        };
        let merged = attrs.merge_as4();
        assert_eq!(
            merged.as_path.unwrap().segments,
            vec![seq(&[65001, 65002]), seq(&[4_200_000_000])]
        );
        assert_eq!(merged.aggregator.unwrap().asn, Asn(4_200_000_000));
        assert!(merged.as4_path.is_none() && merged.as4_aggregator.is_none());
    }

    #[test]
    fn rfc6793_4_2_3_longer_as4_path_is_ignored() {
        let attrs = PathAttributes {
            as_path: Some(AsPath::sequence(asns(&[23456]))),
            as4_path: Some(AsPath::sequence(asns(&[1, 2]))),
            ..Default::default()
        };
        assert_eq!(
            attrs.merge_as4().as_path.unwrap(),
            AsPath::sequence(asns(&[23456]))
        );
    }

    #[test]
    fn rfc6793_4_2_3_aggregator_not_as_trans_ignores_as4_attributes() {
        let attrs = PathAttributes {
            as_path: Some(AsPath::sequence(asns(&[65001, 23456]))),
            as4_path: Some(AsPath::sequence(asns(&[4_200_000_000]))),
            aggregator: Some(Aggregator {
                asn: Asn(65001),
                address: Ipv4Addr::new(1, 1, 1, 1),
            }),
            ..Default::default()
        };
        let merged = attrs.merge_as4();
        assert_eq!(
            merged.as_path.unwrap(),
            AsPath::sequence(asns(&[65001, 23456]))
        );
    }

    #[test]
    fn rfc6793_4_2_2_split_then_merge_is_identity() {
        let attrs = PathAttributes {
            as_path: Some(AsPath {
                segments: vec![
                    AsSegment {
                        kind: SegmentType::ConfedSequence,
                        asns: asns(&[65100]),
                    },
                    seq(&[4_200_000_000, 65001]),
                ],
            }),
            aggregator: Some(Aggregator {
                asn: Asn(4_200_000_000),
                address: Ipv4Addr::new(1, 1, 1, 1),
            }),
            ..Default::default()
        };
        let old = attrs.for_two_octet_peer();
        assert_eq!(
            old.as_path.as_ref().unwrap().segments[1].asns,
            asns(&[23456, 65001])
        );
        assert_eq!(old.aggregator.unwrap().asn, Asn(23456));
        assert_eq!(old.clone().merge_as4(), attrs);
    }

    #[test]
    fn well_known_communities_are_named() {
        assert_eq!(Community(0xffff_ff01).to_string(), "NO_EXPORT");
        assert_eq!(Community((65000 << 16) | 100).to_string(), "65000:100");
    }
}
