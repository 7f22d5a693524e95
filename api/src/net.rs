//! Addresses as Calico's resources write them: CIDRs (strict or not), bare IPs, BGP peer
//! addresses with an optional port, and MAC addresses.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnetwork::IpNetwork;

/// Parse `<ip>/<prefix>` as Go's `net.ParseCIDR` does: a full IP address (no `10/8`
/// shorthand), a decimal prefix no longer than the address. Host bits may be set; the result
/// keeps them (see [`is_masked`]).
pub fn parse_cidr(s: &str) -> Option<IpNetwork> {
    let (ip, prefix) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 3 {
        return None;
    }
    IpNetwork::new(ip, prefix.parse().ok()?).ok()
}

/// A CIDR, or a bare IP taken as a full-length prefix (Calico's `ParseCIDROrIP`).
pub fn parse_cidr_or_ip(s: &str) -> Option<IpNetwork> {
    parse_cidr(s).or_else(|| s.parse::<IpAddr>().ok().map(IpNetwork::from))
}

/// Whether the network has no host bits set (`10.0.0.0/8`, not `10.0.0.1/8`).
pub fn is_masked(net: &IpNetwork) -> bool {
    net.ip() == net.network()
}

/// Whether every address of `inner` lies in `outer` (BIRD's `net ~ outer`; same family only).
pub fn within(outer: &IpNetwork, inner: &IpNetwork) -> bool {
    outer.is_ipv4() == inner.is_ipv4()
        && outer.prefix() <= inner.prefix()
        && outer.contains(inner.network())
}

/// The canonical text of a network: masked address, then prefix (Go's `IPNet.String()`).
pub fn canonical(net: &IpNetwork) -> String {
    format!("{}/{}", net.network(), net.prefix())
}

/// A BGP peer address: an IP, optionally with a port (`10.0.0.1`, `10.0.0.1:179`,
/// `[fd00::1]:179`, `fd00::1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerIp {
    pub ip: IpAddr,
    pub port: Option<u16>,
}

/// Why a text is not a peer address.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid peer address '{0}': expected <IP>, <IPv4>:<port> or [<IPv6>]:<port>")]
pub struct PeerIpError(pub String);

fn port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|p| *p > 0)
}

impl FromStr for PeerIp {
    type Err = PeerIpError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || PeerIpError(s.to_string());
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(PeerIp { ip, port: None });
        }
        // Calico's validator: `[v6]:port` or `v4:port`, the port 1-65535.
        if let Some(rest) = s.strip_prefix('[') {
            let (ip, p) = rest.split_once("]:").ok_or_else(err)?;
            let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| err())?;
            return Ok(PeerIp {
                ip: IpAddr::V6(ip),
                port: Some(port(p).ok_or_else(err)?),
            });
        }
        let (ip, p) = s.rsplit_once(':').ok_or_else(err)?;
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| err())?;
        Ok(PeerIp {
            ip: IpAddr::V4(ip),
            port: Some(port(p).ok_or_else(err)?),
        })
    }
}

impl fmt::Display for PeerIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.ip, self.port) {
            (ip, None) => write!(f, "{ip}"),
            (IpAddr::V4(ip), Some(p)) => write!(f, "{ip}:{p}"),
            (IpAddr::V6(ip), Some(p)) => write!(f, "[{ip}]:{p}"),
        }
    }
}

/// A MAC address in one of the forms Go's `net.ParseMAC` accepts: 6, 8 or 20 bytes as
/// `xx:xx:...` or `xx-xx-...`, or as dot-separated groups of four hex digits.
pub fn is_mac(s: &str) -> bool {
    let hex = |g: &str, n: usize| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit());
    let sizes = [6, 8, 20];
    for sep in [':', '-'] {
        let groups: Vec<&str> = s.split(sep).collect();
        if sizes.contains(&groups.len()) && groups.iter().all(|g| hex(g, 2)) {
            return true;
        }
    }
    let groups: Vec<&str> = s.split('.').collect();
    sizes.iter().any(|n| groups.len() * 2 == *n) && groups.iter().all(|g| hex(g, 4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(parse_cidr("10.0.0.0/8").map(|n| n.prefix()), Some(8));
        assert!(parse_cidr("10.0.0.1").is_none());
        assert!(parse_cidr("10/8").is_none());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("10.0.0.0/-1").is_none());
        assert!(parse_cidr("fd00::/129").is_none());
        assert!(parse_cidr_or_ip("10.0.0.1").is_some_and(|n| n.prefix() == 32));
        let n = parse_cidr("10.0.0.1/8").unwrap();
        assert!(!is_masked(&n));
        assert_eq!(canonical(&n), "10.0.0.0/8");
        assert_eq!(
            canonical(&parse_cidr("fd00:0:0::/48").unwrap()),
            "fd00::/48"
        );
    }

    #[test]
    fn peer_ips() {
        for (text, ip, port) in [
            ("10.0.0.1", "10.0.0.1", None),
            ("10.0.0.1:179", "10.0.0.1", Some(179)),
            ("[fd00::1]:179", "fd00::1", Some(179)),
            ("fd00::1", "fd00::1", None),
        ] {
            let p: PeerIp = text.parse().unwrap();
            assert_eq!((p.ip, p.port), (ip.parse().unwrap(), port), "{text}");
            assert_eq!(p.to_string(), text);
        }
        for bad in [
            "",
            "10.0.0.1:0",
            "10.0.0.1:65536",
            "[fd00::1]",
            "fd00::1:179x",
            "host:179",
            "[10.0.0.1]:1",
        ] {
            assert!(bad.parse::<PeerIp>().is_err(), "{bad}");
        }
    }

    #[test]
    fn macs() {
        assert!(is_mac("ee:ee:ee:ee:ee:ee"));
        assert!(is_mac("66-CA-8A-00-00-01"));
        assert!(is_mac("0000.5e00.5301"));
        assert!(!is_mac("ee:ee:ee:ee:ee"));
        assert!(!is_mac("gg:ee:ee:ee:ee:ee"));
    }
}
