//! The speaker's status, served on a Unix socket for `calicoctl node status` and
//! `calico-node -bgp-ready`, which is how Calico's tools read BIRD's control socket.
//!
//! The socket (default [`DEFAULT_SOCKET`], `/var/run/calico/bgp.sock`, mode 0600) answers
//! every connection with one JSON document, a [`Status`], and closes it. [`Status`] carries
//! what BIRD's `show protocols` shows Calico: per session its name, address, kind, BIRD-style
//! state (`up`/`start`), since when, and the BGP state with the last error.

use std::io::{self, Read};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixListener;
use tokio::sync::watch;

use crate::config::PeerKind;
use crate::fsm::State;
use crate::speaker::SpeakerState;

/// Where the speaker serves its status.
pub const DEFAULT_SOCKET: &str = "/var/run/calico/bgp.sock";

/// The socket path: `CALICO_BGP_STATUS_SOCKET` if set, else [`DEFAULT_SOCKET`].
pub fn socket_path() -> PathBuf {
    std::env::var_os("CALICO_BGP_STATUS_SOCKET")
        .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from)
}

/// One session, as `calicoctl node status` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerStatus {
    /// BIRD's protocol name, `Mesh_10_0_0_2`.
    pub name: String,
    pub address: IpAddr,
    /// `node-to-node mesh`, `global` or `node specific`.
    pub peer_type: String,
    /// BIRD's protocol state: `up` when Established, else `start`.
    pub state: String,
    /// Seconds since the Unix epoch when `state` was entered.
    pub since: u64,
    /// The BGP state (`Established`, `Active`, ...).
    pub bgp_state: String,
    /// The last error, as BIRD words it (`Socket: Connection refused`), or empty.
    pub info: String,
    pub routes_received: usize,
    /// How often the session has reached Established.
    #[serde(default)]
    pub established: u32,
}

/// What the socket answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub router_id: Option<String>,
    pub local_as: Option<u32>,
    pub peers: Vec<PeerStatus>,
    pub routes: usize,
}

impl Status {
    /// `calico-node -bgp-ready`: every configured session is Established (true with none, as
    /// Calico's BIRD readiness check has nothing to wait for then).
    pub fn all_established(&self) -> bool {
        self.peers.iter().all(|p| p.bgp_state == "Established")
    }
}

fn peer_type(kind: PeerKind) -> &'static str {
    match kind {
        PeerKind::Mesh => "node-to-node mesh",
        PeerKind::Global => "global",
        PeerKind::Node => "node specific",
    }
}

fn bgp_state(state: State) -> &'static str {
    match state {
        State::Idle => "Idle",
        State::Connect => "Connect",
        State::Active => "Active",
        State::OpenSent => "OpenSent",
        State::OpenConfirm => "OpenConfirm",
        State::Established => "Established",
    }
}

fn epoch_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl From<&SpeakerState> for Status {
    fn from(s: &SpeakerState) -> Status {
        Status {
            router_id: s.router_id.map(|r| r.to_string()),
            local_as: s.local_as,
            routes: s.routes,
            peers: s
                .peers
                .iter()
                .map(|p| PeerStatus {
                    name: p.name.clone(),
                    address: p.address,
                    peer_type: peer_type(p.kind).to_string(),
                    state: if p.state == State::Established {
                        "up"
                    } else {
                        "start"
                    }
                    .to_string(),
                    since: epoch_seconds(p.since),
                    bgp_state: bgp_state(p.state).to_string(),
                    info: p.info.clone(),
                    routes_received: p.routes_received,
                    established: p.established,
                })
                .collect(),
        }
    }
}

/// Serves `state` on a Unix socket at `path` until the task is dropped. A stale socket file is
/// replaced; the parent directory is created.
pub async fn serve(path: &Path, state: watch::Receiver<SpeakerState>) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    loop {
        let (mut stream, _) = listener.accept().await?;
        let status = Status::from(&*state.borrow());
        tokio::spawn(async move {
            if let Ok(json) = serde_json::to_vec(&status) {
                // A reader that goes away early is its own problem.
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&json)).await;
            }
        });
    }
}

/// Reads the status from the socket at `path`.
pub fn query(path: &Path, timeout: Duration) -> io::Result<Status> {
    let mut stream = std::os::unix::net::UnixStream::connect(path)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    serde_json::from_slice(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speaker::PeerState;

    #[tokio::test]
    async fn the_socket_answers_with_the_current_state_in_birds_terms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/bgp.sock");
        let since = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let state = SpeakerState {
            router_id: Some("10.0.0.1".parse().unwrap()),
            local_as: Some(64512),
            peers: vec![
                PeerState {
                    name: "Mesh_10_0_0_2".into(),
                    address: "10.0.0.2".parse().unwrap(),
                    port: 179,
                    kind: PeerKind::Mesh,
                    state: State::Established,
                    since,
                    info: String::new(),
                    routes_received: 3,
                    established: 1,
                },
                PeerState {
                    name: "Global_10_0_0_9".into(),
                    address: "10.0.0.9".parse().unwrap(),
                    port: 179,
                    kind: PeerKind::Global,
                    state: State::Active,
                    since,
                    info: "Socket: Connection refused".into(),
                    routes_received: 0,
                    established: 0,
                },
            ],
            ..Default::default()
        };
        let (tx, rx) = watch::channel(state);
        let server = tokio::spawn({
            let path = path.clone();
            async move { serve(&path, rx).await }
        });
        let p = path.clone();
        let status = wait_query(&p).await;
        assert_eq!(status.peers[0].peer_type, "node-to-node mesh");
        assert_eq!(status.peers[0].state, "up");
        assert_eq!(status.peers[1].state, "start");
        assert_eq!(status.peers[1].bgp_state, "Active");
        assert_eq!(status.peers[1].since, 1_700_000_000);
        assert!(!status.all_established());
        tx.send_modify(|s| s.peers.truncate(1));
        let status = wait_query(&p).await;
        assert!(status.all_established());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        server.abort();
    }

    async fn wait_query(path: &Path) -> Status {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let p = path.to_path_buf();
            match tokio::task::spawn_blocking(move || query(&p, Duration::from_secs(2)))
                .await
                .unwrap()
            {
                Ok(s) => return s,
                Err(e) if std::time::Instant::now() > deadline => panic!("no status: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}
