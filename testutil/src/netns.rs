//! Network namespaces for tests: created with a unique name, removed on drop (also when the
//! test panics), with veth pairs made directly inside them, so nothing is ever added to the
//! root namespace.
//!
//! Code that must run *inside* a namespace (our speaker, a netlink socket) runs on a thread that
//! has entered it with `setns(2)`: [`Netns::spawn_thread`] for a plain thread, and
//! [`Netns::runtime`] for a tokio runtime all of whose threads are in the namespace. A socket
//! belongs to the namespace of the thread that created it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Whether this process may create namespaces. Without root a test skips when `CI` is unset
/// (printing why) and fails under `CI=true`.
pub fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test} needs root (CI is set, so this is a failure, not a skip)");
    }
    eprintln!("SKIPPED {test}: needs root (set CI=true to make this a failure)");
    false
}

/// A network namespace this test created.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

fn check(out: Output, what: &str) -> io::Result<String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

fn ip(args: &[&str]) -> io::Result<String> {
    check(
        Command::new("ip")
            .args(args)
            .stdin(Stdio::null())
            .output()?,
        &format!("ip {}", args.join(" ")),
    )
}

impl Netns {
    /// Creates `t<pid>-<n>-<tag>` (the tag shortened so names stay readable) with `lo` up.
    pub fn new(tag: &str) -> io::Result<Netns> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag: String = tag
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        let name = format!("t{}-{n}-{tag}", std::process::id());
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, args: &[&str]) -> io::Result<Output> {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .stdin(Stdio::null())
            .output()
    }

    /// Runs a command inside the namespace; its stdout, or an error with its stderr.
    pub fn exec_ok(&self, args: &[&str]) -> io::Result<String> {
        check(self.exec(args)?, &args.join(" "))
    }

    /// A command that will run inside the namespace (the caller spawns it and owns its pid:
    /// `ip netns exec` execs the program, so the child's pid is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// A veth pair between `a` and `b`, created directly inside them, up, with the given
    /// addresses (CIDR form, or empty for none).
    pub fn veth(
        a: &Netns,
        a_if: &str,
        a_addr: &str,
        b: &Netns,
        b_if: &str,
        b_addr: &str,
    ) -> io::Result<()> {
        ip(&[
            "link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns",
            &b.name,
        ])?;
        for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
            if !addr.is_empty() {
                ns.exec_ok(&["ip", "addr", "add", addr, "dev", ifname])?;
            }
            ns.exec_ok(&["ip", "link", "set", ifname, "up"])?;
        }
        Ok(())
    }

    /// Enters the namespace on the calling thread. Only for threads dedicated to it.
    fn enter(path: &PathBuf) -> io::Result<()> {
        let f = File::open(path)?;
        // SAFETY: setns on an open namespace fd; affects only the calling thread.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Runs `f` on a new thread inside the namespace at `path` and waits for it.
    pub fn run_at<T: Send + 'static>(
        path: PathBuf,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<T> {
        std::thread::spawn(move || {
            Netns::enter(&path)?;
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("thread inside the namespace panicked"))?
    }

    /// Runs `f` on a new thread inside the namespace.
    pub fn spawn_thread<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<io::Result<T>> {
        let path = self.path();
        std::thread::spawn(move || {
            Netns::enter(&path)?;
            Ok(f())
        })
    }

    /// A multi-thread tokio runtime whose worker threads all live in the namespace. Run work
    /// there with `spawn`: `block_on` polls its own future on the calling thread, which is
    /// outside the namespace.
    pub fn runtime(&self, threads: usize) -> io::Result<tokio::runtime::Runtime> {
        let path = self.path();
        // Fail early (and clearly) if the namespace cannot be entered.
        File::open(&path)?;
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .on_thread_start(move || {
                if let Err(e) = Netns::enter(&path) {
                    // A worker outside the namespace would open sockets in the wrong place.
                    panic!("cannot enter {}: {e}", path.display());
                }
            })
            .build()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes a test started in the namespace are stopped by their owners first; a
        // namespace with processes left in it disappears once they exit.
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("warning: {e}");
        }
    }
}

/// Namespaces on one Ethernet segment: a bridge in a namespace of its own, and one member
/// namespace per address, each with `eth0` on the bridge carrying that address (CIDR form).
#[derive(Debug)]
pub struct Fabric {
    pub members: Vec<Netns>,
    _bridge: Netns,
}

impl Fabric {
    pub fn new(tag: &str, addresses: &[&str]) -> io::Result<Fabric> {
        let bridge = Netns::new(&format!("{tag}br"))?;
        bridge.exec_ok(&["ip", "link", "add", "br0", "type", "bridge"])?;
        bridge.exec_ok(&["ip", "link", "set", "br0", "up"])?;
        let mut members = Vec::new();
        for (i, addr) in addresses.iter().enumerate() {
            let ns = Netns::new(&format!("{tag}{i}"))?;
            let port = format!("p{i}");
            Netns::veth(&ns, "eth0", addr, &bridge, &port, "")?;
            bridge.exec_ok(&["ip", "link", "set", &port, "master", "br0"])?;
            members.push(ns);
        }
        Ok(Fabric {
            members,
            _bridge: bridge,
        })
    }
}

/// Polls `cond` every 50 ms until it holds or `timeout` passes; `Err` names what was awaited.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str) -> bool {
        ip(&["netns", "list"])
            .is_ok_and(|l| l.lines().any(|x| x.split_whitespace().next() == Some(name)))
    }

    #[test]
    fn a_namespace_is_removed_on_drop_even_after_a_panic() {
        if !require_root("a_namespace_is_removed_on_drop_even_after_a_panic") {
            return;
        }
        let name = std::panic::catch_unwind(|| {
            let ns = Netns::new("drop").unwrap();
            let name = ns.name().to_string();
            assert!(listed(&name));
            std::panic::panic_any(name);
        })
        .unwrap_err()
        .downcast::<String>()
        .unwrap();
        assert!(!listed(&name), "{name} still exists");
    }

    #[test]
    fn threads_and_runtimes_run_inside_the_namespace() {
        if !require_root("threads_and_runtimes_run_inside_the_namespace") {
            return;
        }
        let a = Netns::new("a").unwrap();
        let b = Netns::new("b").unwrap();
        Netns::veth(&a, "va", "10.200.0.1/24", &b, "vb", "10.200.0.2/24").unwrap();
        // A listener bound inside `b` (its address exists nowhere else) is reachable from a
        // runtime in `a`, over the veth.
        let listener = b
            .spawn_thread(|| std::net::TcpListener::bind("10.200.0.2:0"))
            .join()
            .unwrap()
            .unwrap()
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let rt = a.runtime(1).unwrap();
        let connected = rt.block_on(async move {
            tokio::spawn(async move { tokio::net::TcpStream::connect(("10.200.0.2", port)).await })
                .await
                .unwrap()
        });
        connected.expect("connect from inside a");
    }
}
