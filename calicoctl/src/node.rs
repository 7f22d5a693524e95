//! `calicoctl node status`: the BGP sessions of the calico-node on this host, read from the
//! speaker's status socket (`CALICO_BGP_STATUS_SOCKET`, default `/var/run/calico/bgp.sock`)
//! and printed as Calico prints BIRD's protocols. Calico decides whether "Calico process is
//! running" from the process list; here the socket answering is that test.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp::status::{PeerStatus, Status};

use crate::commands::Outcome;
use crate::table;

/// How long the speaker may take to answer (Calico's BIRD time-out).
const TIMEOUT: Duration = Duration::from_secs(2);

/// BIRD's `iso short` time: `HH:MM:SS` (local time) within the last 20 hours, else the date.
fn since(epoch: u64, now: SystemTime) -> String {
    let t = UNIX_EPOCH + Duration::from_secs(epoch);
    let local: chrono::DateTime<chrono::Local> = t.into();
    let recent = now
        .duration_since(t)
        .is_ok_and(|d| d < Duration::from_secs(20 * 3600));
    if recent {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d").to_string()
    }
}

fn peers_table(peers: &[&PeerStatus], now: SystemTime) -> String {
    let rows: Vec<Vec<String>> = peers
        .iter()
        .map(|p| {
            let info = if p.info.is_empty() {
                p.bgp_state.clone()
            } else {
                format!("{} {}", p.bgp_state, p.info)
            };
            vec![
                p.address.to_string(),
                p.peer_type.clone(),
                p.state.clone(),
                since(p.since, now),
                info,
            ]
        })
        .collect();
    table::boxed_centered(
        &["PEER ADDRESS", "PEER TYPE", "STATE", "SINCE", "INFO"],
        &rows,
    )
}

/// The text `calicoctl node status` prints for `status`.
pub fn render(status: &Status, now: SystemTime) -> String {
    let mut out = String::from("Calico process is running.\n");
    for (family, v4) in [("4", true), ("6", false)] {
        out.push_str(&format!("\nIPv{family} BGP status\n"));
        let peers: Vec<&PeerStatus> = status
            .peers
            .iter()
            .filter(|p| p.address.is_ipv4() == v4)
            .collect();
        if peers.is_empty() {
            out.push_str(&format!("No IPv{family} peers found.\n"));
        } else {
            out.push_str(&peers_table(&peers, now));
        }
    }
    out.push('\n');
    out
}

/// `calicoctl node status`.
pub fn status(socket: &Path, is_root: bool) -> Outcome {
    // Calico's enforceRoot.
    if !is_root {
        return Outcome {
            stdout: "Need super user privileges: Operation not permitted\n".into(),
            stderr: String::new(),
            code: 1,
        };
    }
    match bgp::status::query(socket, TIMEOUT) {
        Ok(s) => Outcome {
            stdout: render(&s, SystemTime::now()),
            stderr: String::new(),
            code: 0,
        },
        Err(e) => {
            tracing::debug!(socket = %socket.display(), error = %e, "no BGP status");
            Outcome {
                stdout: String::new(),
                stderr: "Calico process is not running.\n".into(),
                code: 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(addr: &str, kind: &str, state: &str, bgp: &str, info: &str) -> PeerStatus {
        PeerStatus {
            name: String::new(),
            address: addr.parse().unwrap(),
            peer_type: kind.into(),
            state: state.into(),
            since: 1_700_000_000,
            bgp_state: bgp.into(),
            info: info.into(),
            routes_received: 0,
            established: 1,
        }
    }

    #[test]
    fn renders_calicos_table_per_family() {
        let status = Status {
            peers: vec![
                peer("172.17.8.102", "node-to-node mesh", "up", "Established", ""),
                peer(
                    "10.0.0.9",
                    "global",
                    "start",
                    "Active",
                    "Socket: Connection refused",
                ),
            ],
            ..Default::default()
        };
        // Within 20 hours the time of day is shown; compute what this machine's zone prints.
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let t = since(1_700_000_000, now);
        assert_eq!(t.len(), 8);
        let got = render(&status, now);
        assert!(
            got.starts_with("Calico process is running.\n\nIPv4 BGP status\n+"),
            "{got}"
        );
        assert!(
            got.contains("| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |"),
            "{got}"
        );
        assert!(
            got.contains(&format!(
                "| 172.17.8.102 | node-to-node mesh | up    | {t} | Established "
            )),
            "{got}"
        );
        assert!(got.contains(&format!("| 10.0.0.9     | global            | start | {t} | Active Socket: Connection refused |")), "{got}");
        assert!(
            got.ends_with("IPv6 BGP status\nNo IPv6 peers found.\n\n"),
            "{got}"
        );
        // An old session shows its date.
        assert_eq!(
            since(1_700_000_000, now + Duration::from_secs(86_400)).len(),
            10
        );
    }

    #[test]
    fn no_peers_at_all() {
        let got = render(&Status::default(), SystemTime::now());
        assert_eq!(
            got,
            "Calico process is running.\n\nIPv4 BGP status\nNo IPv4 peers found.\n\nIPv6 BGP status\nNo IPv6 peers found.\n\n"
        );
    }
}
