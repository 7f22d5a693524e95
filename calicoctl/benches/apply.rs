//! `cargo bench -p calicoctl --bench apply`: `calicoctl apply -f` of one file with 1,000
//! resources of several kinds against a fresh etcd, in seconds; beside it, in the same run,
//! the floor for the same number of writes: 1,000 sequential create transactions
//! (version == 0 -> put) from one etcd client, which is what each created resource costs at
//! least. Prints both and the ratio.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

const RESOURCES: usize = 1000;

fn manifest() -> String {
    let mut out = String::new();
    for i in 0..RESOURCES {
        let doc = match i % 5 {
            0 => format!(
                "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: pool-{i}\n\
                 spec:\n  cidr: 10.{}.{}.0/24\n  natOutgoing: true\n",
                i / 256,
                i % 256
            ),
            1 => format!(
                "apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata:\n  name: peer-{i}\n\
                 spec:\n  peerIP: 192.0.{}.{}\n  asNumber: 64512\n  nodeSelector: rack == 'r{i}'\n",
                i / 256,
                i % 256
            ),
            2 => format!(
                "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\nmetadata:\n  \
                 name: set-{i}\n  labels:\n    role: db\nspec:\n  nets:\n  - 198.51.{}.{}/32\n",
                i / 256,
                i % 256
            ),
            3 => format!(
                "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  \
                 name: gnp-{i}\nspec:\n  selector: app == 'a{i}'\n  ingress:\n  - action: Allow\n    \
                 protocol: TCP\n    destination:\n      ports: [80, 443]\n"
            ),
            _ => format!(
                "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata:\n  \
                 name: np-{i}\n  namespace: ns-{}\nspec:\n  selector: app == 'a{i}'\n  egress:\n  \
                 - action: Allow\n",
                i % 10
            ),
        };
        out.push_str(&doc);
        out.push_str("---\n");
    }
    out
}

fn main() {
    let Some(etcd) = testutil::etcd::start_or_skip() else {
        return;
    };
    let text = manifest();

    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_calicoctl"))
        .args(["apply", "-f", "-"])
        .env("ETCD_ENDPOINTS", etcd.endpoint())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run calicoctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write manifest");
    let out = child.wait_with_output().expect("calicoctl finishes");
    let ours = start.elapsed().as_secs_f64();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "calicoctl failed: {said}");
    assert_eq!(
        said,
        format!("Successfully applied {RESOURCES} resource(s)\n")
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let floor = rt.block_on(async {
        let mut c = etcd_client::Client::connect([etcd.endpoint()], None)
            .await
            .expect("connect");
        let value = vec![b'x'; 400];
        let start = Instant::now();
        for i in 0..RESOURCES {
            let key = format!("/bench/floor/{i}");
            let txn = etcd_client::Txn::new()
                .when([etcd_client::Compare::version(
                    key.clone(),
                    etcd_client::CompareOp::Equal,
                    0,
                )])
                .and_then([etcd_client::TxnOp::put(key, value.clone(), None)]);
            c.txn(txn).await.expect("txn");
        }
        start.elapsed().as_secs_f64()
    });

    println!("calicoctl apply, one file of {RESOURCES} resources (5 kinds), fresh etcd");
    println!("  machine: {} cores, {}", cores(), date());
    println!(
        "  ours (calicoctl apply):                 {ours:.3} s ({:.0} resources/s)",
        RESOURCES as f64 / ours
    );
    println!("  floor ({RESOURCES} sequential create txns): {floor:.3} s");
    println!(
        "  ratio ours/floor:                        {:.2}",
        ours / floor
    );
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn date() -> String {
    Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
