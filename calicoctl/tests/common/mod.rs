//! What calicoctl's integration tests share: a test etcd (the workspace's one harness,
//! `testutil`) with a `CalicoAPIConfig` naming it, and a way to run the built binary against it
//! the way a user would, isolated from the host's own calicoctl configuration.

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use testutil::etcd::Etcd;

/// What one calicoctl run printed, and its exit status.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Environment that would point calicoctl elsewhere; cleared for every run.
const HOST_ENV: &[&str] = &[
    "DATASTORE_TYPE",
    "ETCD_ENDPOINTS",
    "ETCD_USERNAME",
    "ETCD_PASSWORD",
    "ETCD_KEY_FILE",
    "ETCD_CERT_FILE",
    "ETCD_CA_CERT_FILE",
    "KUBECONFIG",
];

/// A test etcd and a config directory for calicoctl.
pub struct Calicoctl {
    pub etcd: Etcd,
    /// Holds `calicoctl.cfg` naming this etcd (passed with `-c`, so the host's
    /// `/etc/calico/calicoctl.cfg` never applies); calicoctl runs with it as working directory.
    pub config: tempfile::TempDir,
}

impl Calicoctl {
    /// `None` only when etcd is missing and `CI` is unset (testutil says so).
    pub fn start() -> Option<Calicoctl> {
        let etcd = testutil::etcd::start_or_skip()?;
        let config = tempfile::tempdir().expect("temp dir");
        std::fs::write(
            config.path().join("calicoctl.cfg"),
            format!(
                "apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata:\nspec:\n  \
                 datastoreType: etcdv3\n  etcdEndpoints: {}\n",
                etcd.endpoints().join(",")
            ),
        )
        .expect("write calicoctl.cfg");
        Some(Calicoctl { etcd, config })
    }

    pub fn config_file(&self) -> PathBuf {
        self.config.path().join("calicoctl.cfg")
    }

    pub fn dir(&self) -> &Path {
        self.config.path()
    }

    /// Run calicoctl with `args` (and `-c <config>` unless the test passes its own) and
    /// `stdin`. `DATASTORE_TYPE` and `ETCD_ENDPOINTS` name the test etcd too, as a user's
    /// environment might.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_calicoctl"));
        cmd.args(args);
        if !args.contains(&"-c") {
            cmd.arg("-c").arg(self.config_file());
        }
        for var in HOST_ENV {
            cmd.env_remove(var);
        }
        cmd.env("DATASTORE_TYPE", "etcdv3")
            .env("ETCD_ENDPOINTS", self.etcd.endpoint())
            .current_dir(self.config.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run calicoctl");
        let mut input = child.stdin.take().expect("stdin");
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .expect("write stdin");
        drop(input);
        let out = child.wait_with_output().expect("calicoctl finishes");
        Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }
}
