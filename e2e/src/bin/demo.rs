//! The demo (`scripts/demo.sh`): a throwaway etcd on a free loopback port, then calicoctl as a
//! user would run it against that etcd: apply Calico's example manifests, list them, show one
//! as YAML and as etcd stores it, refuse a bad pool; give pods on two nodes addresses with
//! Calico's IPAM and show them with `calicoctl ipam`; and clean up. Nothing outside the temp
//! dir and the processes it starts is touched.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let calicoctl = sibling("calicoctl")?;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .canonicalize()?;
    let etcd = testutil::etcd::Etcd::try_start().context("starting etcd")?;
    let endpoint = etcd.endpoint();
    println!(
        "# etcd {endpoint} (pid {}), data in {}",
        etcd.pid().unwrap_or(0),
        etcd.dir().display()
    );
    println!("# export ETCD_ENDPOINTS={endpoint}\n");

    // Runs calicoctl as a user would, with `input` on its stdin; prints what it printed.
    let ctl_with = |args: &[&str], input: &str| -> Result<bool> {
        println!("$ calicoctl {}", args.join(" "));
        let mut child = Command::new(&calicoctl)
            .args(args)
            .env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", &endpoint)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running calicoctl")?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        print!("{}", String::from_utf8_lossy(&out.stderr));
        println!("# exit status {}\n", out.status.code().unwrap_or(-1));
        Ok(out.status.success())
    };
    let ctl = |args: &[&str]| ctl_with(args, "");

    let dir = examples.to_string_lossy().into_owned();
    if !ctl(&["apply", "-f", &dir])? {
        bail!("applying the examples failed");
    }
    ctl(&["get", "ippool", "-o", "wide"])?;
    ctl(&["get", "bgppeer"])?;
    ctl(&["get", "globalnetworkpolicy", "-o", "wide"])?;
    ctl(&["get", "networkpolicy", "-A"])?;
    ctl(&["get", "nodes", "-o", "wide"])?;
    ctl(&["get", "ippool", "my-ippool", "-o", "yaml"])?;

    let key = "/calico/resources/v3/projectcalico.org/ippools/my-ippool";
    println!(
        "# what etcd holds at {key} (Calico's layout; no resourceVersion, it is the key's revision):"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stored = rt.block_on(async {
        let mut c = etcd_client::Client::connect([endpoint.clone()], None).await?;
        let resp = c.get(key, None).await?;
        let value = resp
            .kvs()
            .first()
            .map(|kv| kv.value_str().map(str::to_string));
        Ok::<_, etcd_client::Error>(value.transpose()?.unwrap_or_default())
    })?;
    println!("{stored}\n");

    println!("# a pool overlapping my-ippool is refused, and nothing is written:");
    let overlapping = "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  \
                       name: overlapping\nspec:\n  cidr: 10.1.128.0/17\n";
    println!("{overlapping}");
    let refused = !ctl_with(&["apply", "-f", "-"], overlapping)?;
    if !refused {
        bail!("the overlapping pool was accepted");
    }

    println!("# IPAM: pods on two nodes get addresses from my-ippool, as a CNI ADD asks for them");
    let node_b = "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: node-b\n";
    ctl_with(&["apply", "-f", "-"], node_b)?;
    let pods = rt.block_on(async {
        let backend = datastore::etcd::EtcdBackend::connect(&datastore::config::EtcdConfig {
            endpoints: vec![endpoint.clone()],
            ..Default::default()
        })
        .await?;
        let ipam = ipam::Ipam::new(std::sync::Arc::new(backend));
        let mut pods = Vec::new();
        for (node, count) in [("node-hostname", 5), ("node-b", 3)] {
            for i in 0..count {
                let handle = format!("k8s-pod-network.{node}-pod{i}");
                // What the CNI plugin records with each address.
                let mut args = ipam::AutoAssignArgs::new(node, 1, 0).handle(&handle);
                args.attrs = [
                    ("namespace", "default".to_string()),
                    ("node", node.to_string()),
                    ("pod", format!("pod{i}")),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                let got = ipam.auto_assign(&args).await?;
                println!("  {node} pod{i}: {} (handle {handle})", got.ipv4[0]);
                pods.push((handle, got.ipv4[0].ip()));
            }
        }
        anyhow::Ok(pods)
    })?;
    println!();
    ctl(&["ipam", "show"])?;
    ctl(&["ipam", "show", "--show-blocks"])?;
    let first = pods[0].1.to_string();
    ctl(&["ipam", "show", "--ip", &first])?;
    println!(
        "# no WorkloadEndpoint uses these addresses (there is no CNI plugin yet), so the check \
         calls them leaked:"
    );
    ctl(&["ipam", "check"])?;
    println!("# releasing {} (what a CNI DEL does):", pods[0].0);
    rt.block_on(async {
        let backend = datastore::etcd::EtcdBackend::connect(&datastore::config::EtcdConfig {
            endpoints: vec![endpoint.clone()],
            ..Default::default()
        })
        .await?;
        let n = ipam::Ipam::new(std::sync::Arc::new(backend))
            .release_by_handle(&pods[0].0)
            .await?;
        println!("  released {n} address(es)\n");
        anyhow::Ok(())
    })?;
    ctl(&["ipam", "show", "--ip", &first])?;

    ctl(&["delete", "ippool", "my-ippool"])?;
    ctl(&["version"])?;
    println!("# stopping etcd and removing its data");
    drop(etcd);
    Ok(())
}

/// A binary built beside this one (`cargo build -p calicoctl -p e2e`).
fn sibling(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating the demo binary")?;
    let path = me.with_file_name(name);
    if !path.exists() {
        bail!(
            "{} not found: build it with `cargo build -p calicoctl`",
            path.display()
        );
    }
    Ok(path)
}
