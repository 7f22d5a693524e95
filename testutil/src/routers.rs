//! Real BGP routers as test peers: BIRD 2, FRR (zebra + bgpd) and GoBGP, each run as a child
//! process inside a network namespace the test created, with its configuration, control socket
//! and logs in a temporary directory of its own. A router is stopped by the pid we spawned
//! (SIGTERM, then SIGKILL) when it is dropped, also when the test panics.
//!
//! The daemons' flags follow `../shared/tools/bgp-lab.sh`: each confined to its namespace with
//! its own sockets, nothing in the root namespace.

use std::fs;
use std::io;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::netns::Netns;

/// How long a daemon may take to open its control socket.
const START_DEADLINE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// The packages a router test needs, for skip messages.
pub const PACKAGES: &str = "bird2 frr gobgpd";

/// Whether the three daemons are installed.
pub fn installed() -> bool {
    ["/usr/sbin/bird", "/usr/lib/frr/bgpd", "/usr/bin/gobgpd"]
        .iter()
        .all(|p| Path::new(p).exists())
}

fn wait_for_path(daemon: &mut Daemon, path: &Path, what: &str, log: &Path) -> io::Result<()> {
    let deadline = Instant::now() + START_DEADLINE;
    while Instant::now() < deadline && daemon.running() {
        if path.exists() {
            return Ok(());
        }
        std::thread::sleep(POLL);
    }
    let log = fs::read_to_string(log).unwrap_or_default();
    Err(io::Error::other(format!(
        "{what} exited or did not create {} within {START_DEADLINE:?}; log:\n{log}",
        path.display()
    )))
}

/// A child process we started; SIGTERM then SIGKILL on drop, by its pid only.
struct Daemon {
    child: Child,
}

impl Daemon {
    fn spawn(ns: &Netns, args: &[&str], log: &Path) -> io::Result<Daemon> {
        let out = fs::File::create(log)?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        Ok(Daemon { child })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the daemon and waits for it.
    fn stop(&mut self) {
        if !self.running() {
            return;
        }
        // `ip netns exec` execs the daemon, so this pid is the daemon itself.
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling a child we spawned and have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if !self.running() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the daemon at once (SIGKILL), as a crash would.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(ns: &Netns, args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// BIRD 2 in a namespace.
pub struct Bird {
    ns: String,
    dir: TempDir,
    daemon: Daemon,
}

impl Bird {
    /// Starts `bird -f` with `config` (a complete bird.conf) inside `ns`.
    pub fn start(ns: &Netns, config: &str) -> io::Result<Bird> {
        let dir = tempfile::Builder::new().prefix("bird-").tempdir()?;
        let conf = dir.path().join("bird.conf");
        fs::write(&conf, config)?;
        let ctl = dir.path().join("bird.ctl");
        let log = dir.path().join("stdout.log");
        let mut daemon = Daemon::spawn(
            ns,
            &[
                "bird",
                "-f",
                "-c",
                path(&conf),
                "-s",
                path(&ctl),
                "-P",
                path(&dir.path().join("bird.pid")),
            ],
            &log,
        )?;
        wait_for_path(&mut daemon, &ctl, "bird", &log)?;
        Ok(Bird {
            ns: ns.name().to_string(),
            dir,
            daemon,
        })
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Runs one birdc command and returns its output.
    pub fn birdc(&self, command: &str) -> io::Result<String> {
        let ctl = self.dir.path().join("bird.ctl");
        let mut args = vec!["birdc", "-s", path(&ctl)];
        args.extend(command.split_whitespace());
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(&args)
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether protocol `name` is Established.
    pub fn established(&self, name: &str) -> bool {
        self.birdc(&format!("show protocols {name}"))
            .is_ok_and(|o| o.contains("Established"))
    }

    /// Replaces the configuration and reloads it.
    pub fn reconfigure(&self, config: &str) -> io::Result<String> {
        fs::write(self.dir.path().join("bird.conf"), config)?;
        self.birdc("configure")
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }
}

/// FRR's zebra and bgpd in a namespace.
pub struct Frr {
    ns: String,
    dir: TempDir,
    // bgpd first: dropped (stopped) before zebra.
    bgpd: Daemon,
    zebra: Daemon,
}

const FRR_LIB: &str = "/usr/lib/frr";

impl Frr {
    /// Starts zebra and bgpd with `bgpd_config` (a complete bgpd.conf) inside `ns`.
    pub fn start(ns: &Netns, bgpd_config: &str) -> io::Result<Frr> {
        let dir = tempfile::Builder::new().prefix("frr-").tempdir()?;
        let d = dir.path();
        fs::write(d.join("zebra.conf"), "hostname frr-test\n")?;
        fs::write(d.join("bgpd.conf"), bgpd_config)?;
        // The daemons drop privileges to frr:frr and must reach their files.
        let chown = Command::new("chown")
            .args(["-R", "frr:frr", path(d)])
            .status()?;
        if !chown.success() {
            return Err(io::Error::other("chown frr:frr failed"));
        }
        let zserv = d.join("zserv.api");
        let mut zebra = Daemon::spawn(
            ns,
            &[
                &format!("{FRR_LIB}/zebra"),
                "-f",
                path(&d.join("zebra.conf")),
                "-i",
                path(&d.join("zebra.pid")),
                "-z",
                path(&zserv),
                "--vty_socket",
                path(d),
                "-P",
                "0",
                "-u",
                "frr",
                "-g",
                "frr",
                "-s",
                "16777216",
            ],
            &d.join("zebra.log"),
        )?;
        wait_for_path(&mut zebra, &zserv, "zebra", &d.join("zebra.log"))?;
        let mut bgpd = Daemon::spawn(
            ns,
            &[
                &format!("{FRR_LIB}/bgpd"),
                "-f",
                path(&d.join("bgpd.conf")),
                "-i",
                path(&d.join("bgpd.pid")),
                "-z",
                path(&zserv),
                "--vty_socket",
                path(d),
                "-P",
                "0",
                "-u",
                "frr",
                "-g",
                "frr",
            ],
            &d.join("bgpd.log"),
        )?;
        wait_for_path(&mut bgpd, &d.join("bgpd.vty"), "bgpd", &d.join("bgpd.log"))?;
        Ok(Frr {
            ns: ns.name().to_string(),
            dir,
            bgpd,
            zebra,
        })
    }

    pub fn bgpd_pid(&self) -> u32 {
        self.bgpd.pid()
    }

    pub fn zebra_pid(&self) -> u32 {
        self.zebra.pid()
    }

    /// Runs one vtysh command (`show bgp summary json`, ...).
    pub fn vtysh(&self, command: &str) -> io::Result<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns, "vtysh", "--vty_socket"])
            .arg(self.dir.path())
            .args(["-c", command])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Whether the session with `neighbor` is Established.
    pub fn established(&self, neighbor: &str) -> bool {
        self.vtysh(&format!("show bgp neighbors {neighbor} json"))
            .is_ok_and(|o| o.contains("\"bgpState\":\"Established\""))
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("bgpd.log")).unwrap_or_default()
    }
}

/// GoBGP in a namespace, its gRPC API on that namespace's loopback.
pub struct GoBgp {
    ns: String,
    dir: TempDir,
    daemon: Daemon,
}

const GOBGP_API_PORT: &str = "50051";

impl GoBgp {
    /// Starts gobgpd with `config` (a complete gobgpd.toml) inside `ns`.
    pub fn start(ns: &Netns, config: &str) -> io::Result<GoBgp> {
        let dir = tempfile::Builder::new().prefix("gobgp-").tempdir()?;
        let conf = dir.path().join("gobgpd.toml");
        fs::write(&conf, config)?;
        let log = dir.path().join("gobgpd.log");
        let api = format!("127.0.0.1:{GOBGP_API_PORT}");
        let daemon = Daemon::spawn(
            ns,
            &[
                "gobgpd",
                "-f",
                path(&conf),
                "--api-hosts",
                &api,
                "--pprof-disable",
                "-l",
                "info",
            ],
            &log,
        )?;
        let g = GoBgp {
            ns: ns.name().to_string(),
            dir,
            daemon,
        };
        let deadline = Instant::now() + START_DEADLINE;
        while g.cli(&["global"]).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "gobgpd API did not answer; log:\n{}",
                    g.log()
                )));
            }
            std::thread::sleep(POLL);
        }
        Ok(g)
    }

    pub fn pid(&self) -> u32 {
        self.daemon.pid()
    }

    /// Runs `gobgp <args>` against this daemon.
    pub fn cli(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["gobgp", "-u", "127.0.0.1", "-p", GOBGP_API_PORT];
        all.extend_from_slice(args);
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(&all)
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn established(&self, neighbor: &str) -> bool {
        // "BGP state = ESTABLISHED" (the spelling varies between GoBGP versions).
        self.cli(&["neighbor", neighbor]).is_ok_and(|o| {
            o.lines().any(|l| {
                l.contains("BGP state =") && l.to_ascii_lowercase().contains("established")
            })
        })
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("gobgpd.log")).unwrap_or_default()
    }
}

impl Bird {
    /// Kills BIRD at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        self.daemon.kill();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The kernel routes of `table` in `ns` with protocol `proto` (`bird`, `bgp`, `186`), as
/// `ip route show` prints them, one per line.
pub fn kernel_routes(ns: &Netns, proto: &str) -> io::Result<Vec<String>> {
    Ok(run(ns, &["ip", "route", "show", "proto", proto])?
        .lines()
        .map(str::to_string)
        .collect())
}
