//! The TCP side of a BGP session: dialing a peer and listening for peers, with the per-peer
//! socket options Calico's `BGPPeer` asks for: TCP MD5 signatures (RFC 2385, `password`), the
//! Generalized TTL Security Mechanism (RFC 5082, `ttlSecurity`), a fixed source address
//! (`sourceAddress`) and the listen port (`BGPConfiguration.listenPort`).
//!
//! Everything here is a thin wrapper over Linux socket options; the session logic is in
//! [`crate::peer`]. Sockets belong to the network namespace of the thread that creates them.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// RFC 2385 keys are at most 80 octets on Linux (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// How long a dial may take before it counts as failed (BIRD's connect timeout is similar).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Per-peer socket options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Bind the outgoing connection to this address (`BGPPeer.spec.sourceAddress`).
    pub source_address: Option<IpAddr>,
    /// TCP MD5 signature key (RFC 2385).
    pub md5_password: Option<String>,
    /// GTSM: the peer is at most this many hops away (RFC 5082); `None` is off.
    pub ttl_security: Option<u8>,
}

/// Linux's `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

fn sockaddr_storage(ip: IpAddr) -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { mem::zeroed() };
    match ip {
        IpAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large enough and suitably aligned for sockaddr_in.
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(v4).to_be();
        }
        IpAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = v6.octets();
        }
    }
    ss
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            value as *const T as *const libc::c_void,
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets (or, with `None`, removes) the RFC 2385 key for segments to and from `peer` on `fd`.
/// On a listening socket this is what makes the kernel accept the peer's signed SYN.
pub fn set_md5(fd: RawFd, peer: IpAddr, key: Option<&str>) -> io::Result<()> {
    let key = key.unwrap_or("").as_bytes();
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP MD5 password of {} octets; Linux allows at most {MD5_MAX_KEY_LEN}",
                key.len()
            ),
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: sockaddr_storage(peer),
        flags: 0,
        prefixlen: 0,
        keylen: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    match setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig) {
        // Removing a key that is not there.
        Err(e) if key.is_empty() && e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        r => r,
    }
}

/// RFC 5082 §3: send with TTL 255 and accept only segments whose TTL is at least `256 - hops`,
/// as BIRD's `ttl security on; multihop <hops>` does (Calico's `ttlSecurity`): 1 hop means
/// directly connected, minimum TTL 255.
pub fn set_gtsm(fd: RawFd, ipv6: bool, hops: u8) -> io::Result<()> {
    let min = libc::c_int::from(255u8.saturating_sub(hops.saturating_sub(1)));
    let max: libc::c_int = 255;
    if ipv6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &max)?;
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &min)
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &max)?;
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &min)
    }
}

/// Applies the options that matter on an established or accepted connection.
fn tune(fd: RawFd, ipv6: bool, opts: &Options) -> io::Result<()> {
    if let Some(hops) = opts.ttl_security {
        set_gtsm(fd, ipv6, hops)?;
    }
    Ok(())
}

/// Dials `peer` with `opts`, giving up after [`CONNECT_TIMEOUT`].
pub async fn connect(peer: SocketAddr, opts: &Options) -> io::Result<TcpStream> {
    let socket = if peer.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    let fd = socket.as_raw_fd();
    if let Some(src) = opts.source_address {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    if let Some(key) = &opts.md5_password {
        set_md5(fd, peer.ip(), Some(key))?;
    }
    tune(fd, peer.is_ipv6(), opts)?;
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(peer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "Connection timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Prepares an accepted connection for a peer with `opts`.
pub fn accepted(stream: &TcpStream, opts: &Options) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let ipv6 = stream.peer_addr()?.is_ipv6();
    tune(stream.as_raw_fd(), ipv6, opts)
}

/// The BGP listening sockets: one for IPv4 and, where the namespace has IPv6, one for IPv6.
#[derive(Debug)]
pub struct Listener {
    v4: TcpListener,
    v6: Option<TcpListener>,
}

fn listen_socket(addr: SocketAddr) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    TcpListener::from_std(socket.into())
}

impl Listener {
    /// Listens on `port` on every address (0 picks a free port, for tests).
    pub fn bind(port: u16) -> io::Result<Listener> {
        let v4 = listen_socket(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port))?;
        let port = v4.local_addr()?.port();
        // A namespace without IPv6 (disabled by sysctl) still runs IPv4 sessions.
        let v6 = listen_socket(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port)).ok();
        Ok(Listener { v4, v6 })
    }

    pub fn port(&self) -> io::Result<u16> {
        Ok(self.v4.local_addr()?.port())
    }

    /// The next incoming connection, from either family.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        match &self.v6 {
            Some(v6) => tokio::select! {
                r = self.v4.accept() => r,
                r = v6.accept() => r,
            },
            None => self.v4.accept().await,
        }
    }

    /// Sets or removes the MD5 key the listener requires from `peer`.
    pub fn set_md5(&self, peer: IpAddr, key: Option<&str>) -> io::Result<()> {
        match (peer, &self.v6) {
            (IpAddr::V4(_), _) => set_md5(self.v4.as_raw_fd(), peer, key),
            (IpAddr::V6(_), Some(v6)) => set_md5(v6.as_raw_fd(), peer, key),
            (IpAddr::V6(_), None) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "no IPv6 listener in this namespace",
            )),
        }
    }
}
