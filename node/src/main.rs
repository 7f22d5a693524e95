//! `calico-node`: one binary, its role chosen by Calico's flags (Go flag syntax, `-bgp` or
//! `--bgp`). Implemented so far: `-bgp` (the BGP speaker alone), `-bgp-ready` and
//! `-bird-ready` (exit 0 only when every configured BGP session is Established), `-bgp-live`
//! and `-bird-live` (the speaker answers on its status socket), `-v`.
//!
//! Environment for `-bgp`: `NODENAME` (else the hostname), `DATASTORE_TYPE`,
//! `ETCD_ENDPOINTS` (and the other `ETCD_*` of calicoctl), `IP` and `AS` (written into the
//! Node's `spec.bgp` when set; full startup with autodetection is `calico-node -startup`'s job),
//! `CALICO_BGP_PASSWORD_DIR` (BGP passwords in etcd mode: `<dir>/<secret>/<key>`),
//! `CALICO_BGP_STATUS_SOCKET` (default `/var/run/calico/bgp.sock`), `LOG_LEVEL`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use api::ResourceKind;
use api::asn::Asn;
use api::node::{Node, NodeBGPSpec};
use bgp::speaker::{Options, Speaker};
use datastore::client::Client;
use datastore::config::DatastoreConfig;
use datastore::{Error as StoreError, ResourceKey};

const USAGE: &str =
    "Usage: calico-node -bgp | -bgp-ready | -bird-ready | -bgp-live | -bird-live | -v";

fn main() -> ExitCode {
    bgp::speaker::limit_malloc_arenas();
    let flags: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| a.trim_start_matches('-').to_string())
        .collect();
    let has = |f: &str| flags.iter().any(|x| x == f);
    if flags.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    if let Some(unknown) = flags.iter().find(|f| {
        !matches!(
            f.as_str(),
            "bgp" | "bgp-ready" | "bird-ready" | "bgp-live" | "bird-live" | "v" | "version"
        )
    }) {
        eprintln!("calico-node: flag -{unknown} is not implemented yet\n{USAGE}");
        return ExitCode::from(2);
    }
    if has("v") || has("version") {
        println!("{}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if has("bgp") {
        return match run_bgp() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("calico-node: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    // Health checks, as Calico's readiness and liveness probes call them.
    let path = bgp::status::socket_path();
    match bgp::status::query(&path, Duration::from_secs(2)) {
        Err(e) => {
            eprintln!(
                "calico-node: BGP speaker not answering on {}: {e}",
                path.display()
            );
            ExitCode::FAILURE
        }
        Ok(status) => {
            if (has("bgp-ready") || has("bird-ready")) && !status.all_established() {
                let down: Vec<String> = status
                    .peers
                    .iter()
                    .filter(|p| p.bgp_state != "Established")
                    .map(|p| format!("{} ({})", p.address, p.bgp_state))
                    .collect();
                eprintln!(
                    "calico/node is not ready: BGP not established with {}",
                    down.join(",")
                );
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
    }
}

fn node_name() -> anyhow::Result<String> {
    if let Ok(n) = std::env::var("NODENAME")
        && !n.is_empty()
    {
        return Ok(n);
    }
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").context("reading the hostname")?;
    Ok(h.trim().to_string())
}

fn run_bgp() -> anyhow::Result<()> {
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level.to_lowercase()))
        .init();
    let node = node_name()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let config = DatastoreConfig::load_from_env(None).context("datastore configuration")?;
        let client = Client::connect(&config).await.context("connecting to the datastore")?;
        register(&client, &node).await?;
        let speaker = Speaker::start(Options::default())
            .await
            .context("starting the BGP speaker")?;
        let socket = bgp::status::socket_path();
        let state = speaker.state();
        let status = tokio::spawn(async move {
            if let Err(e) = bgp::status::serve(&socket, state).await {
                tracing::error!(error = %e, "status socket failed");
            }
        });
        tracing::info!(%node, "BGP speaker running");
        let backend = client.backend().clone();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = bgp::sync::run(backend, node, &speaker, bgp::sync::PasswordFiles::from_env()) => {
                tracing::error!("datastore sync ended");
            }
            _ = term.recv() => tracing::info!("SIGTERM: stopping; kernel routes stay for the restart"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: stopping"),
        }
        status.abort();
        speaker.shutdown().await;
        let _ = std::fs::remove_file(bgp::status::socket_path());
        Ok(())
    })
}

/// Writes `IP` and `AS` into the Node's `spec.bgp` (creating the Node) when they are set.
async fn register(client: &Client, node: &str) -> anyhow::Result<()> {
    let ip = std::env::var("IP")
        .ok()
        .filter(|v| !v.is_empty() && v != "autodetect" && v != "none");
    let asn = std::env::var("AS").ok().filter(|v| !v.is_empty());
    if ip.is_none() && asn.is_none() {
        return Ok(());
    }
    let address = match ip {
        Some(ip) if ip.contains('/') => Some(ip),
        Some(ip) => {
            let _: std::net::Ipv4Addr = ip
                .parse()
                .with_context(|| format!("IP={ip} is not an IPv4 address"))?;
            Some(format!("{ip}/32"))
        }
        None => None,
    };
    let asn: Option<Asn> = match asn {
        Some(a) => Some(a.parse().map_err(|e| anyhow::anyhow!("AS={a}: {e}"))?),
        None => None,
    };
    let key = ResourceKey::new(ResourceKind::Node, None, node);
    for _ in 0..10 {
        let existing = match client.get::<Node>(&key).await {
            Ok(n) => Some(n),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e).context("reading this node"),
        };
        let mut n = existing.clone().unwrap_or_else(|| {
            let mut n = Node {
                api_version: "projectcalico.org/v3".into(),
                kind: "Node".into(),
                ..Default::default()
            };
            n.metadata.name = node.to_string();
            n
        });
        let bgp = n.spec.bgp.get_or_insert_with(NodeBGPSpec::default);
        if address.is_some() {
            bgp.ipv4_address = address.clone();
        }
        if asn.is_some() {
            bgp.as_number = asn;
        }
        let result = match &existing {
            None => client.create(&n).await.map(|_| ()),
            Some(old) if *old == n => return Ok(()),
            Some(_) => client.update(&n).await.map(|_| ()),
        };
        match result {
            Ok(()) => return Ok(()),
            // Someone else wrote the node meanwhile: read again.
            Err(StoreError::AlreadyExists(_)) | Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e).context("writing this node"),
        }
    }
    bail!("could not register node {node}: too many concurrent updates")
}
