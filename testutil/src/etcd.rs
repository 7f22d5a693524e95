//! A throwaway single-member etcd for tests.
//!
//! ```no_run
//! let Some(etcd) = testutil::etcd::start_or_skip() else { return };
//! let endpoints = etcd.endpoints(); // ["http://127.0.0.1:<port>"]
//! ```
//!
//! The API is blocking so that sync and async tests can both use it; from inside a tokio
//! runtime call [`Etcd::kill`]/[`Etcd::restart`] through `tokio::task::block_in_place` (on a
//! multi-thread runtime) so other tasks keep running while etcd comes up.

use std::env;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long etcd may take to become healthy. Debian's etcd is up in ~1 s here; the margin is
/// for a loaded CI machine running several test binaries at once.
const START_DEADLINE: Duration = Duration::from_secs(30);
/// How long a SIGTERM'd etcd may take to exit before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// Pause between two health probes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Attempts with fresh ports when etcd finds a port taken (another process may bind a port
/// between our probe and etcd's bind).
const PORT_ATTEMPTS: usize = 5;
const MEMBER_NAME: &str = "testutil";
const LOG_TAIL_LINES: usize = 30;

/// What the skip message says, word for word, so CI logs can be searched for it.
pub const SKIP_MESSAGE: &str = "SKIPPED: etcd not installed (set CI=true to make this fatal)";

/// A running (or killed, restartable) etcd owned by this test.
pub struct Etcd {
    binary: PathBuf,
    /// Where it listens: loopback, or an address in `netns`.
    host: Ipv4Addr,
    /// Run inside this network namespace (its /run/netns path and name).
    netns: Option<(PathBuf, String)>,
    /// Removed on drop, after the child is dead.
    dir: TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

/// The `etcd` binary on `PATH`, if installed.
pub fn etcd_binary() -> Option<PathBuf> {
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Whether this run is CI, where a missing etcd must fail the test rather than skip it.
pub fn is_ci() -> bool {
    match env::var("CI") {
        Ok(v) => !v.is_empty() && v != "0" && !v.eq_ignore_ascii_case("false"),
        Err(_) => false,
    }
}

/// Whether an etcd test can run here: true if etcd is installed; otherwise prints
/// [`SKIP_MESSAGE`] and returns false, or panics under `CI`.
pub fn available_or_skip() -> bool {
    if etcd_binary().is_some() {
        return true;
    }
    if is_ci() {
        panic!("etcd not installed (CI is set, so this is fatal): install Debian's etcd-server");
    }
    println!("{SKIP_MESSAGE}");
    false
}

/// Start etcd for a test, or apply the skip policy ([`available_or_skip`]) and return None.
/// A start failure with etcd installed always panics.
pub fn start_or_skip() -> Option<Etcd> {
    available_or_skip().then(Etcd::start)
}

impl Etcd {
    /// Start etcd and wait until it is healthy; panics with the tail of etcd's log if it
    /// cannot be started.
    pub fn start() -> Etcd {
        match Etcd::try_start() {
            Ok(etcd) => etcd,
            Err(e) => panic!("{e}"),
        }
    }

    /// Start etcd and wait until it is healthy. The error carries the tail of etcd's log.
    pub fn try_start() -> io::Result<Etcd> {
        let binary = etcd_binary()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "etcd not found on PATH"))?;
        let dir = tempfile::Builder::new()
            .prefix("testutil-etcd-")
            .tempdir()?;
        let (client_port, peer_port) = free_port_pair()?;
        let mut etcd = Etcd {
            binary,
            host: Ipv4Addr::LOCALHOST,
            netns: None,
            dir,
            client_port,
            peer_port,
            child: None,
        };
        let mut attempt = 1;
        loop {
            match etcd.spawn_and_wait() {
                Ok(()) => return Ok(etcd),
                Err(e) => {
                    etcd.kill();
                    if attempt >= PORT_ATTEMPTS
                        || !etcd.log_tail().contains("address already in use")
                    {
                        return Err(e);
                    }
                    // Another process bound a port between our probe and etcd's bind: try
                    // fresh ports with a fresh data dir (the member's URLs are recorded in it).
                    let _ = fs::remove_dir_all(etcd.dir.path().join("data"));
                    (etcd.client_port, etcd.peer_port) = free_port_pair()?;
                    attempt += 1;
                }
            }
        }
    }

    /// Start etcd inside `ns`, listening on `host` (an address of that namespace) on etcd's
    /// usual ports, which are free in a namespace of the test's own.
    pub fn start_in(ns: &crate::netns::Netns, host: Ipv4Addr) -> io::Result<Etcd> {
        let binary = etcd_binary()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "etcd not found on PATH"))?;
        let dir = tempfile::Builder::new()
            .prefix("testutil-etcd-")
            .tempdir()?;
        let mut etcd = Etcd {
            binary,
            host,
            netns: Some((ns.path(), ns.name().to_string())),
            dir,
            client_port: 2379,
            peer_port: 2380,
            child: None,
        };
        etcd.spawn_and_wait()?;
        Ok(etcd)
    }

    /// The client URLs, as etcd clients take them.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint()]
    }

    /// The one client URL, `http://127.0.0.1:<port>` (or the namespace address).
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.client_port)
    }

    /// The pid of the running etcd, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The temporary directory holding the data dir and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// The last lines etcd logged (across restarts).
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
    }

    /// SIGKILL etcd (by the pid of the child this harness started) and reap it: a crash, with
    /// no chance to say goodbye to clients. The data dir stays for [`Etcd::restart`].
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Child::kill sends SIGKILL to exactly this child's pid; an already-exited child
            // is fine.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop etcd cleanly (SIGTERM, then SIGKILL after a deadline). The data dir stays.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) with the pid of our own unreaped child: the pid cannot have been
            // reused by another process until we wait for it.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(POLL_INTERVAL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Start etcd again on the same ports and data dir (killing it first if it still runs)
    /// and wait until it is healthy. Panics with the log tail on failure.
    pub fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.spawn_and_wait() {
            self.kill();
            panic!("{e}");
        }
    }

    fn spawn_and_wait(&mut self) -> io::Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
        let client_url = self.endpoint();
        let peer_url = format!("http://{}:{}", self.host, self.peer_port);
        let data_dir = self.dir.path().join("data");
        let mut cmd = match &self.netns {
            Some((_, name)) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", name]).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("--name")
            .arg(MEMBER_NAME)
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen-client-urls")
            .arg(&client_url)
            .arg("--advertise-client-urls")
            .arg(&client_url)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("{MEMBER_NAME}={peer_url}"))
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(format!("testutil-{}", self.client_port))
            // Tests need speed, not durability: a SIGKILL leaves written data in the page
            // cache, so kill + restart still finds it.
            .arg("--unsafe-no-fsync")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // etcd reads ETCD_<FLAG> variables as flags (and refuses ones that clash with our
        // flags): a developer's or CI's environment must not configure the test member.
        for (name, _) in env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(&name);
            }
        }
        let child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {}: {e}", self.binary.display()),
            )
        })?;
        self.child = Some(child);
        self.wait_healthy()
    }

    /// Poll until etcd answers `GET /health` with `"health":"true"`: etcd 3.4 answers it only
    /// with a leader and after a linearizable read through raft, so the member serves requests.
    fn wait_healthy(&mut self) -> io::Result<()> {
        let addr = SocketAddr::from((self.host, self.client_port));
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(self.start_error(&format!("etcd exited with {status}")));
            }
            let healthy = match &self.netns {
                Some((path, _)) => {
                    crate::netns::Netns::run_at(path.clone(), move || health_ok(addr))
                        .unwrap_or(false)
                }
                None => health_ok(addr),
            };
            if healthy {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.start_error(&format!(
                    "etcd not healthy on {addr} within {START_DEADLINE:?}"
                )));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    fn start_error(&self, what: &str) -> io::Error {
        io::Error::other(format!(
            "{what} (log {}); last lines:\n{}",
            self.log_path().display(),
            self.log_tail()
        ))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        // Runs on panic unwinding too; the TempDir field is dropped (removed) after this.
        self.kill();
    }
}

impl std::fmt::Debug for Etcd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Etcd")
            .field("endpoint", &self.endpoint())
            .field("pid", &self.pid())
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// Two distinct free loopback ports: bound at once (so they differ) to port 0, then released
/// for etcd to bind. The race with other processes is handled by the caller's retry.
fn free_port_pair() -> io::Result<(u16, u16)> {
    let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok((a.local_addr()?.port(), b.local_addr()?.port()))
}

fn health_ok(addr: SocketAddr) -> bool {
    let probe = || -> io::Result<bool> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.set_write_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body.contains("\"health\":\"true\""))
    };
    probe().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `pid` is still the etcd serving `dir` (a recycled pid runs something else).
    fn etcd_alive(pid: u32, dir: &Path) -> bool {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
            .unwrap_or(false)
    }

    #[test]
    fn starts_healthy_kills_restarts_and_cleans_up() {
        let Some(mut etcd) = start_or_skip() else {
            return;
        };
        let dir = etcd.dir().to_path_buf();
        let pid = etcd.pid().expect("running");
        assert!(etcd.endpoint().starts_with("http://127.0.0.1:"));
        assert!(health_ok(SocketAddr::from((
            Ipv4Addr::LOCALHOST,
            etcd.client_port
        ))));

        assert!(etcd_alive(pid, &dir));
        etcd.kill();
        assert!(!etcd.is_running());
        assert!(!etcd_alive(pid, &dir));

        etcd.restart();
        let pid2 = etcd.pid().expect("running again");
        assert_ne!(pid, pid2);
        assert!(etcd.log_tail().contains("ready to serve client requests"));

        etcd.stop();
        assert!(!etcd_alive(pid2, &dir));
        etcd.restart();
        let pid3 = etcd.pid().expect("running again");
        drop(etcd);
        assert!(!dir.exists(), "temp dir removed");
        assert!(!etcd_alive(pid3, &dir));
    }

    #[test]
    fn killed_on_panic() {
        if !available_or_skip() {
            return;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let result = std::panic::catch_unwind(move || {
            let etcd = Etcd::start();
            tx.send((etcd.pid().expect("running"), etcd.dir().to_path_buf()))
                .expect("send");
            panic!("test failure with etcd running");
        });
        assert!(result.is_err());
        let (pid, dir) = rx.recv().expect("started");
        assert!(!etcd_alive(pid, &dir));
        assert!(!dir.exists());
    }

    #[test]
    fn two_instances_get_different_ports() {
        let Some(a) = start_or_skip() else {
            return;
        };
        let b = Etcd::start();
        assert_ne!(a.endpoint(), b.endpoint());
    }
}
