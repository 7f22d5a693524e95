//! The kernel FIB writer: the only code of the speaker that changes kernel routes.
//!
//! It creates, replaces and deletes routes of route protocol 186 (`RTPROT_BGP`, "bgp" in
//! iproute2's rt_protos) in one table, and never anything else: every delete carries protocol
//! 186, so the kernel itself refuses to remove a route someone else owns (felix's protocol 80,
//! a static route) even for the same prefix.
//!
//! Writes are batched, since one request per route with an acknowledgement each costs about
//! 20 µs a route here (DESIGN.md): thousands of RTM_NEWROUTE/RTM_DELROUTE messages go in one
//! `sendmsg`, only the last of a batch asks for an ACK, and errors (which the kernel reports
//! even unasked) are matched to routes by sequence number. The kernel handles a socket's
//! requests in order, so when the ACK of the last message arrives the whole batch is done.
//!
//! Graceful restart, restarting-speaker side (RFC 4724 §4.1): [`Fib::open`] finds the routes a
//! previous run left and keeps them, so forwarding continues while sessions come back; those not
//! installed again by the time [`Fib::sweep_stale`] is called are removed.
//!
//! The API is blocking: the speaker runs it on a thread of its own. The netlink socket belongs
//! to the network namespace of the thread that calls [`Fib::open`].

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netlink_packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkHeader,
    NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

/// Route protocol 186, "bgp" in iproute2's `/etc/iproute2/rt_protos`.
pub const RTPROT_BGP: u8 = 186;

/// Octets of requests per `sendmsg`: about 4,000 routes.
const BATCH_OCTETS: usize = 256 * 1024;
/// Socket buffers large enough for a batch and its errors.
const SOCKET_BUFFER: usize = 8 * 1024 * 1024;

/// One route to install (next hops given) or delete (no next hops).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibRoute {
    pub prefix: IpNetwork,
    /// More than one: an ECMP route (RTA_MULTIPATH).
    pub next_hops: Vec<IpAddr>,
}

/// What one [`Fib::apply`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    pub installed: usize,
    pub deleted: usize,
    /// Routes the kernel refused, with its reason.
    pub failed: Vec<(IpNetwork, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum FibError {
    #[error("netlink socket: {0}")]
    Socket(#[from] io::Error),
    #[error("netlink: cannot decode the kernel's answer: {0}")]
    Decode(String),
    #[error("netlink: the kernel refused to list routes: {0}")]
    Dump(io::Error),
}

/// The kernel routing table, as far as protocol 186 goes.
pub struct Fib {
    socket: Socket,
    table: u32,
    seq: u32,
    /// Routes left by a previous run, not yet installed again.
    stale: HashSet<IpNetwork>,
    recv_buf: Vec<u8>,
}

impl Fib {
    /// Opens a route netlink socket in the calling thread's namespace and lists the protocol
    /// 186 routes already in `table` (254 is main), which are kept as stale.
    pub fn open(table: u32) -> Result<Fib, FibError> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        // Best effort: larger buffers only save syscalls; the FORCE variants need
        // CAP_NET_ADMIN, which a speaker writing routes has anyway.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
        for opt in [libc::SO_SNDBUFFORCE, libc::SO_RCVBUFFORCE] {
            let size = SOCKET_BUFFER as libc::c_int;
            // SAFETY: setsockopt with a c_int value of the right size.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    &size as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
        }
        // Errors echo only the failed message's header, not its payload.
        let _ = socket.set_cap_ack(true);
        let mut fib = Fib {
            socket,
            table,
            seq: 0,
            stale: HashSet::new(),
            recv_buf: vec![0; 1 << 20],
        };
        fib.stale = fib.dump()?;
        Ok(fib)
    }

    /// Routes of our previous run not installed again yet.
    pub fn stale_count(&self) -> usize {
        self.stale.len()
    }

    /// The protocol 186 routes now in our table.
    pub fn dump(&mut self) -> Result<HashSet<IpNetwork>, FibError> {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        self.seq += 1;
        header.sequence_number = self.seq;
        let msg = RouteMessage::default();
        let mut m = NetlinkMessage::new(
            header,
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetRoute(msg)),
        );
        m.finalize();
        let mut buf = vec![0; m.buffer_len()];
        m.serialize(&mut buf);
        self.socket.send(&buf, 0)?;
        let mut found = HashSet::new();
        loop {
            let n = self.socket.recv(&mut &mut self.recv_buf[..], 0)?;
            let mut at = 0;
            while at < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.recv_buf[at..n])
                    .map_err(|e| FibError::Decode(e.to_string()))?;
                let len = msg.header.length as usize;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(found),
                    NetlinkPayload::Error(e) => {
                        if let Some(code) = e.code {
                            return Err(FibError::Dump(io::Error::from_raw_os_error(-code.get())));
                        }
                    }
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) => {
                        if let Some(p) = self.ours(&r) {
                            found.insert(p);
                        }
                    }
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                at += align(len);
            }
        }
    }

    /// The prefix of `r` if it is one of ours: protocol 186 in our table.
    fn ours(&self, r: &RouteMessage) -> Option<IpNetwork> {
        if r.header.protocol != RouteProtocol::Bgp {
            return None;
        }
        let table = r
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(r.header.table));
        if table != self.table {
            return None;
        }
        let len = r.header.destination_prefix_length;
        let dst = r.attributes.iter().find_map(|a| match a {
            RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
            RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
            _ => None,
        });
        match (dst, r.header.address_family) {
            (Some(ip), _) => IpNetwork::new(ip, len).ok(),
            (None, AddressFamily::Inet) => IpNetwork::new(IpAddr::from([0u8; 4]), 0).ok(),
            (None, AddressFamily::Inet6) => IpNetwork::new(IpAddr::from([0u8; 16]), 0).ok(),
            _ => None,
        }
    }

    fn message(&self, route: &FibRoute) -> RouteMessage {
        let mut msg = RouteMessage::default();
        let h = &mut msg.header;
        h.address_family = if route.prefix.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        h.destination_prefix_length = route.prefix.prefix();
        h.protocol = RouteProtocol::Bgp;
        if let Ok(t) = u8::try_from(self.table) {
            h.table = t;
        } else {
            h.table = RouteHeader::RT_TABLE_UNSPEC;
            msg.attributes.push(RouteAttribute::Table(self.table));
        }
        if route.next_hops.is_empty() {
            // Delete: any scope and type, but only protocol 186.
            msg.header.scope = RouteScope::NoWhere;
            msg.header.kind = RouteType::Unspec;
        } else {
            msg.header.scope = RouteScope::Universe;
            msg.header.kind = RouteType::Unicast;
        }
        msg.attributes
            .push(RouteAttribute::Destination(route.prefix.network().into()));
        match route.next_hops.as_slice() {
            [] => {}
            [one] => msg.attributes.push(RouteAttribute::Gateway((*one).into())),
            many => msg.attributes.push(RouteAttribute::MultiPath(
                many.iter()
                    .map(|nh| {
                        let mut hop = RouteNextHop::default();
                        hop.attributes.push(RouteAttribute::Gateway((*nh).into()));
                        hop
                    })
                    .collect(),
            )),
        }
        msg
    }

    /// Installs, replaces and deletes `routes`, in order, batched. A route the kernel refuses
    /// (next hop unreachable, ...) is reported in the result; the others still apply.
    pub fn apply(&mut self, routes: &[FibRoute]) -> Result<ApplyReport, FibError> {
        let mut report = ApplyReport::default();
        let mut buf = Vec::with_capacity(BATCH_OCTETS + 1024);
        let mut pending: HashMap<u32, usize> = HashMap::new();
        for (i, route) in routes.iter().enumerate() {
            if !route.next_hops.is_empty() {
                self.stale.remove(&route.prefix);
            }
            let last = i + 1 == routes.len() || buf.len() >= BATCH_OCTETS;
            self.seq = self.seq.wrapping_add(1);
            pending.insert(self.seq, i);
            let mut header = NetlinkHeader::default();
            header.sequence_number = self.seq;
            header.flags = NLM_F_REQUEST;
            if last {
                header.flags |= NLM_F_ACK;
            }
            let payload = if route.next_hops.is_empty() {
                RouteNetlinkMessage::DelRoute(self.message(route))
            } else {
                header.flags |= NLM_F_CREATE | NLM_F_REPLACE;
                RouteNetlinkMessage::NewRoute(self.message(route))
            };
            let mut m = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(payload));
            m.finalize();
            let at = buf.len();
            buf.resize(at + m.buffer_len(), 0);
            m.serialize(&mut buf[at..]);
            if last {
                self.flush(&buf, self.seq, routes, &mut pending, &mut report)?;
                buf.clear();
                pending.clear();
            }
        }
        Ok(report)
    }

    /// Sends one batch and reads answers until the ACK of `last_seq`.
    fn flush(
        &mut self,
        buf: &[u8],
        last_seq: u32,
        routes: &[FibRoute],
        pending: &mut HashMap<u32, usize>,
        report: &mut ApplyReport,
    ) -> Result<(), FibError> {
        self.socket.send(buf, 0)?;
        let mut failed: HashSet<usize> = HashSet::new();
        'read: loop {
            let n = self.socket.recv(&mut &mut self.recv_buf[..], 0)?;
            let mut at = 0;
            while at < n {
                let msg = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.recv_buf[at..n])
                    .map_err(|e| FibError::Decode(e.to_string()))?;
                let len = msg.header.length as usize;
                let seq = msg.header.sequence_number;
                if let NetlinkPayload::Error(e) = &msg.payload
                    && let Some(&i) = pending.get(&seq)
                {
                    if let Some(code) = e.code {
                        let errno = -code.get();
                        let route = &routes[i];
                        // Deleting what is already gone is what was wanted.
                        if !(route.next_hops.is_empty() && errno == libc::ESRCH) {
                            failed.insert(i);
                            report.failed.push((
                                route.prefix,
                                io::Error::from_raw_os_error(errno).to_string(),
                            ));
                        }
                    }
                    if seq == last_seq {
                        break 'read;
                    }
                }
                if len == 0 {
                    break;
                }
                at += align(len);
            }
        }
        for (_, &i) in pending.iter() {
            if failed.contains(&i) {
                continue;
            }
            if routes[i].next_hops.is_empty() {
                report.deleted += 1;
            } else {
                report.installed += 1;
            }
        }
        Ok(())
    }

    /// Deletes the routes of our previous run that were not installed again; returns how many.
    pub fn sweep_stale(&mut self) -> Result<usize, FibError> {
        let routes: Vec<FibRoute> = self
            .stale
            .drain()
            .map(|prefix| FibRoute {
                prefix,
                next_hops: Vec::new(),
            })
            .collect();
        let n = routes.len();
        self.apply(&routes)?;
        Ok(n)
    }
}

/// Netlink messages are 4-octet aligned.
fn align(len: usize) -> usize {
    (len + 3) & !3
}
