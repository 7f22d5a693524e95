//! Full-table ingest: one eBGP session from GoBGP preloaded with N unique IPv4 /24s; the
//! receiver is our speaker, BIRD 2 and FRR in turn, each in its own network namespace, all in
//! the same run. Measured: time from Established (the session's TCP connection, as `ss` in the
//! receiver's namespace sees it) until all N routes are in the receiver's
//! kernel FIB, and the receiver's peak RSS (VmHWM; FRR's is bgpd plus zebra). The floor is
//! `ip -batch` adding the same N routes directly.
//!
//!     cargo bench -p bgp --bench full_table                        # N = 100,000
//!     FULL_TABLE_N=100000,1000000 cargo bench -p bgp --bench full_table
//!     FULL_TABLE_RECEIVERS=ours,bird cargo bench -p bgp --bench full_table
//!
//! Needs root and Debian's gobgpd, bird2 and frr; without them it says so and does nothing.
//! Our receiver is this binary run again inside the namespace (`FULL_TABLE_SPEAKER=1`), so its
//! RSS is the speaker's alone.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::asn::Asn;
use bgp::config::{NodeBgpConfig, PeerConfig, PeerKind};
use bgp::route::AcceptAll;
use bgp::speaker::{Desired, Options, Speaker};
use testutil::netns::Netns;
use testutil::routers::{Bird, Frr, GoBgp};

const SENDER: &str = "10.99.12.1";
const RECEIVER: &str = "10.99.12.2";
const DEADLINE: Duration = Duration::from_secs(900);

fn main() {
    if std::env::var_os("FULL_TABLE_SPEAKER").is_some() {
        speaker_mode();
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !testutil::routers::installed() {
        println!(
            "full_table: needs root and {}; skipped",
            testutil::routers::PACKAGES
        );
        return;
    }
    let sizes: Vec<usize> = std::env::var("FULL_TABLE_N")
        .unwrap_or_else(|_| "100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let receivers: Vec<String> = std::env::var("FULL_TABLE_RECEIVERS")
        .unwrap_or_else(|_| "ours,bird,frr".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .collect();
    let mut report = String::new();
    for n in sizes {
        let mrt = mrt_file(n);
        let mut results: BTreeMap<String, Measured> = BTreeMap::new();
        for r in &receivers {
            match run_one(r, n, &mrt) {
                Ok(m) => {
                    println!(
                        "receiver={r} N={n} established->FIB={:.2}s start->FIB={:.2}s first->all={:.2}s peak RSS={} kB",
                        m.established_to_fib, m.start_to_fib, m.first_to_all, m.rss_kb
                    );
                    results.insert(r.clone(), m);
                }
                Err(e) => println!("receiver={r} N={n}: FAILED: {e}"),
            }
        }
        let floor = ip_batch_floor(n).unwrap_or(f64::NAN);
        let _ = writeln!(report, "\nN = {n} (/24s), 2 cores\n");
        let _ = writeln!(
            report,
            "| receiver | established -> all in FIB | first route -> all in FIB | process start -> all in FIB | peak RSS | time vs BIRD | first->all vs BIRD | RSS vs BIRD |"
        );
        let _ = writeln!(report, "|---|---|---|---|---|---|---|---|");
        let bird = results.get("bird").copied();
        for (name, m) in &results {
            let (tr, fr, rr) = match bird {
                Some(b) => (
                    format!("{:.2}x", m.established_to_fib / b.established_to_fib),
                    format!("{:.2}x", m.first_to_all / b.first_to_all),
                    format!("{:.2}x", m.rss_kb as f64 / b.rss_kb as f64),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            let _ = writeln!(
                report,
                "| {name} | {:.2} s | {:.2} s | {:.2} s | {:.1} MB | {tr} | {fr} | {rr} |",
                m.established_to_fib,
                m.first_to_all,
                m.start_to_fib,
                m.rss_kb as f64 / 1024.0
            );
        }
        let _ = writeln!(report, "| floor: `ip -batch` | {floor:.2} s | | | | | | |");
    }
    println!("{report}");
}

/// GoBGP's `mrt inject` input: a TABLE_DUMP_V2 file (RFC 6396) with N /24s from 20.0.0.0, an
/// empty AS_PATH and next hop 0.0.0.0, padded with repeats of the first prefixes because
/// gobgp 3.10 drops the tail of its input stream (DESIGN.md).
fn mrt_file(n: usize) -> PathBuf {
    let dir = PathBuf::from("/var/tmp/bgp-bench-mrt");
    let path = dir.join(format!("v4-{n}.mrt"));
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("cache dir");
    let record = |sub: u16, body: &[u8]| {
        let mut r = Vec::with_capacity(12 + body.len());
        r.extend_from_slice(&0u32.to_be_bytes());
        r.extend_from_slice(&13u16.to_be_bytes());
        r.extend_from_slice(&sub.to_be_bytes());
        r.extend_from_slice(&(body.len() as u32).to_be_bytes());
        r.extend_from_slice(body);
        r
    };
    let mut out = Vec::new();
    // PEER_INDEX_TABLE: collector id, empty view name, one AS4/IPv4 peer.
    let mut pit = Vec::new();
    pit.extend_from_slice(&0x0a63_0001u32.to_be_bytes());
    pit.extend_from_slice(&0u16.to_be_bytes());
    pit.extend_from_slice(&1u16.to_be_bytes());
    pit.push(0x02);
    pit.extend_from_slice(&0x0a63_0001u32.to_be_bytes());
    pit.extend_from_slice(&0x0a63_0001u32.to_be_bytes());
    pit.extend_from_slice(&65001u32.to_be_bytes());
    out.extend(record(1, &pit));
    let attrs: [u8; 14] = [0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, 0, 0, 0, 0];
    let pad = n.min((n / 10).max(5000));
    for i in (0..n).chain(0..pad) {
        let a = (20u32 << 24) + ((i as u32) << 8);
        let mut body = Vec::new();
        body.extend_from_slice(&(i as u32).to_be_bytes());
        body.push(24);
        body.extend_from_slice(&a.to_be_bytes()[..3]);
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes());
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        out.extend(record(2, &body));
    }
    std::fs::write(&path, out).expect("write mrt");
    path
}

fn fib_prefixes(ns: &Netns) -> usize {
    let text = ns
        .exec_ok(&["cat", "/proc/net/fib_triestat"])
        .unwrap_or_default();
    let mut main = false;
    for line in text.lines() {
        if line.starts_with("Main:") {
            main = true;
        } else if main && line.trim_start().starts_with("Prefixes:") {
            return line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
        }
    }
    0
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

enum Receiver {
    Ours(Child),
    Bird(Bird),
    Frr(Frr),
}

impl Receiver {
    fn rss_kb(&self) -> u64 {
        match self {
            Receiver::Ours(c) => vm_hwm_kb(c.id()),
            Receiver::Bird(b) => vm_hwm_kb(b.pid()),
            Receiver::Frr(f) => vm_hwm_kb(f.bgpd_pid()) + vm_hwm_kb(f.zebra_pid()),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Receiver::Ours(c) = self {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Clone, Copy)]
struct Measured {
    established_to_fib: f64,
    /// From starting the receiver process: includes its start-up and the session set-up.
    start_to_fib: f64,
    /// From the first route in the FIB: the receiver's own work, without the time the sender
    /// takes to start sending (GoBGP needs seconds before its first UPDATE of a big table).
    first_to_all: f64,
    rss_kb: u64,
}

fn run_one(receiver: &str, n: usize, mrt: &Path) -> Result<Measured, String> {
    let go_ns = Netns::new("benchgo").map_err(|e| e.to_string())?;
    let rcv_ns = Netns::new(&format!("bench{receiver}")).map_err(|e| e.to_string())?;
    Netns::veth(
        &go_ns,
        "eth0",
        &format!("{SENDER}/24"),
        &rcv_ns,
        "eth0",
        &format!("{RECEIVER}/24"),
    )
    .map_err(|e| e.to_string())?;
    let peer_as = if receiver == "frr" {
        4_200_000_003u32
    } else {
        65002
    };
    let gobgp = GoBgp::start(
        &go_ns,
        &format!(
            "[global.config]\n  as = 65001\n  router-id = \"{SENDER}\"\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{RECEIVER}\"\n    peer-as = {peer_as}\n  [neighbors.timers.config]\n    connect-retry = 1\n  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = \"ipv4-unicast\"\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut have = 0;
    for _ in 0..10 {
        gobgp
            .cli(&["mrt", "inject", "global", mrt.to_str().unwrap_or_default()])
            .map_err(|e| e.to_string())?;
        let summary = gobgp
            .cli(&["global", "rib", "summary", "-a", "ipv4"])
            .map_err(|e| e.to_string())?;
        have = summary
            .split_whitespace()
            .skip_while(|w| *w != "Destination:")
            .nth(1)
            .map(|v| v.replace(',', ""))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if have >= n {
            break;
        }
    }
    if have < n {
        return Err(format!("GoBGP holds {have} of {n} routes"));
    }
    let base = fib_prefixes(&rcv_ns);
    let receiver_proc = match receiver {
        "ours" => Receiver::Ours(
            rcv_ns
                .command(std::env::current_exe().map_err(|e| e.to_string())?.to_str().unwrap_or_default())
                .env("FULL_TABLE_SPEAKER", "1")
                .env("FULL_TABLE_LOG", std::env::var_os("FULL_TABLE_LOG").unwrap_or_default())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?,
        ),
        "bird" => Receiver::Bird(
            Bird::start(
                &rcv_ns,
                &format!(
                    "router id {RECEIVER};\nprotocol device {{ scan time 10; }}\nprotocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; }}\nprotocol bgp gobgp {{ local {RECEIVER} as 65002; neighbor {SENDER} as 65001; hold time 90; connect retry time 1; connect delay time 1; ipv4 {{ import all; export none; }}; }}\n"
                ),
            )
            .map_err(|e| e.to_string())?,
        ),
        "frr" => Receiver::Frr(
            Frr::start(
                &rcv_ns,
                &format!(
                    "hostname bench\nrouter bgp 4200000003\n bgp router-id {RECEIVER}\n no bgp ebgp-requires-policy\n neighbor {SENDER} remote-as 65001\n neighbor {SENDER} timers connect 1\n"
                ),
            )
            .map_err(|e| e.to_string())?,
        ),
        other => return Err(format!("unknown receiver {other}")),
    };
    let start = Instant::now();
    // Nothing reaches the FIB before the session is up, so watch for that first, then count.
    // The session's TCP connection is the receiver-neutral sign (the OPEN/KEEPALIVE exchange
    // that follows takes a round trip on a veth); GoBGP's own state shows up late.
    let mut established = None;
    while established.is_none() && start.elapsed() < DEADLINE {
        let tcp = rcv_ns
            .exec_ok(&[
                "ss",
                "-Htn",
                "state",
                "established",
                "( sport = :179 or dport = :179 )",
            ])
            .unwrap_or_default();
        if tcp.trim().is_empty() {
            std::thread::sleep(Duration::from_millis(5));
        } else {
            established = Some(Instant::now());
        }
    }
    let mut first_route = None;
    loop {
        let count = fib_prefixes(&rcv_ns).saturating_sub(base);
        if count > 0 && first_route.is_none() {
            first_route = Some(Instant::now());
        }
        if count >= n {
            break;
        }
        if start.elapsed() > DEADLINE {
            return Err(format!(
                "only {count} of {n} routes in the FIB after {DEADLINE:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = Instant::now();
    let rss = receiver_proc.rss_kb();
    let from = established.unwrap_or(start);
    drop(receiver_proc);
    drop(gobgp);
    Ok(Measured {
        established_to_fib: done.duration_since(from).as_secs_f64(),
        start_to_fib: done.duration_since(start).as_secs_f64(),
        first_to_all: done
            .duration_since(first_route.unwrap_or(from))
            .as_secs_f64(),
        rss_kb: rss,
    })
}

/// `ip -batch` adding the same routes in a fresh namespace: what the kernel itself costs.
fn ip_batch_floor(n: usize) -> Result<f64, String> {
    let a = Netns::new("floora").map_err(|e| e.to_string())?;
    let b = Netns::new("floorb").map_err(|e| e.to_string())?;
    Netns::veth(
        &a,
        "eth0",
        &format!("{RECEIVER}/24"),
        &b,
        "eth0",
        &format!("{SENDER}/24"),
    )
    .map_err(|e| e.to_string())?;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("routes");
    let mut text = String::with_capacity(n * 48);
    for i in 0..n {
        let net = Ipv4Addr::from((20u32 << 24) + ((i as u32) << 8));
        let _ = writeln!(text, "route add {net}/24 via {SENDER} proto 186");
    }
    std::fs::write(&file, text).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let out = Command::new("ip")
        .args(["-n", a.name(), "-batch"])
        .arg(&file)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(start.elapsed().as_secs_f64())
}

/// The receiver: our speaker with one eBGP session to GoBGP, accepting and installing all.
fn speaker_mode() {
    bgp::speaker::limit_malloc_arenas();
    if let Some(path) = std::env::var_os("FULL_TABLE_LOG")
        && let Ok(file) = std::fs::File::create(path)
    {
        tracing_subscriber::fmt()
            .with_writer(std::sync::Mutex::new(file))
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .init();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let speaker = Speaker::start(Options::default()).await.expect("speaker");
        let peer = PeerConfig::new(
            PeerKind::Global,
            SENDER.parse().expect("address"),
            None,
            Asn(65001),
        );
        speaker
            .apply(Desired {
                node: NodeBgpConfig {
                    router_id: RECEIVER.parse().expect("address"),
                    local_as: Asn(65002),
                    listen_port: 179,
                    cluster_id: None,
                    peers: vec![peer],
                },
                passwords: HashMap::new(),
                policies: HashMap::new(),
                default_policy: Arc::new(AcceptAll),
                local_routes: BTreeMap::new(),
                install: Arc::new(|_| true),
            })
            .await;
        std::future::pending::<()>().await;
    });
}
