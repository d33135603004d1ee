//! rtnetlink (RFC 3549; `rtnetlink(7)`) in one network namespace: the few requests the
//! wiring needs, each bounded in time.
//!
//! A netlink socket stays in the namespace it was opened in, whatever its user does later: a
//! socket for a container's namespace is opened by a short-lived thread that entered the
//! namespace ([`within`]), and then used from the calling thread. No `/sys` is read: sysfs
//! shows the namespace it was mounted in, which under `nsenter --net` is not the caller's.

use std::fs::File;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoKind, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteProtocol, RouteScope};
use rtnetlink::packet_route::tc::TcMessage;
use rtnetlink::{Handle, LinkUnspec, RouteMessageBuilder};

use super::PlumbingError;

/// How long one request may take before the plugin gives up on it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `f` on a thread that entered the network namespace at `netns` (`setns(2)`: only the
/// calling thread moves, so the plugin's own thread stays where it was).
pub fn within<T: Send>(
    netns: &str,
    what: &str,
    f: impl FnOnce() -> Result<T, PlumbingError> + Send,
) -> Result<T, PlumbingError> {
    let fail = |detail: String| PlumbingError {
        command: format!("{what} in {netns}"),
        detail,
    };
    let file = File::open(netns).map_err(|e| fail(format!("cannot open the namespace: {e}")))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: setns on a descriptor this function owns; it changes only this thread.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    let e = std::io::Error::last_os_error();
                    return Err(fail(format!("not a network namespace: {e}")));
                }
                f()
            })
            .join()
            .unwrap_or_else(|_| Err(fail("the namespace thread panicked".into())))
    })
}

/// A link as the kernel reports it.
#[derive(Debug, Clone)]
pub struct Link {
    pub index: u32,
    /// Six octets for an Ethernet link.
    pub mac: Vec<u8>,
    pub kind: Option<InfoKind>,
    /// `IFLA_INFO_DATA` of a TUN/TAP device (`IFLA_TUN_*`, include/uapi/linux/if_link.h).
    pub tun: Vec<(u16, Vec<u8>)>,
}

/// An rtnetlink socket in one namespace, driven by its own single-threaded runtime.
pub struct Rtnl {
    runtime: tokio::runtime::Runtime,
    handle: Handle,
    /// Where the socket is, for messages.
    place: String,
}

impl Rtnl {
    /// A socket in the calling thread's namespace; `place` names it in errors.
    pub fn here(place: &str) -> Result<Rtnl, PlumbingError> {
        let fail = |detail: String| PlumbingError {
            command: format!("open rtnetlink in {place}"),
            detail,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let (connection, handle, _) = {
            let _context = runtime.enter();
            rtnetlink::new_connection().map_err(|e| fail(e.to_string()))?
        };
        runtime.spawn(connection);
        Ok(Rtnl {
            runtime,
            handle,
            place: place.to_owned(),
        })
    }

    /// A socket in the namespace at `netns`.
    pub fn in_netns(netns: &str) -> Result<Rtnl, PlumbingError> {
        within(netns, "open rtnetlink", || Rtnl::here(netns))
    }

    /// `what` names the request in an error.
    fn call<T>(
        &self,
        what: String,
        request: impl Future<Output = Result<T, rtnetlink::Error>>,
    ) -> Result<T, PlumbingError> {
        let outcome = self
            .runtime
            .block_on(async { tokio::time::timeout(REQUEST_TIMEOUT, request).await });
        let fail = |detail: String| PlumbingError {
            command: format!("{what} in {}", self.place),
            detail,
        };
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(fail(describe(&e))),
            Err(_) => Err(fail(format!("no answer within {REQUEST_TIMEOUT:?}"))),
        }
    }

    /// The link named `name`, or none.
    pub fn link(&self, name: &str) -> Result<Option<Link>, PlumbingError> {
        let request = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        let found = self.call(format!("get link {name}"), async move {
            let mut stream = std::pin::pin!(request);
            match stream.try_next().await {
                Ok(message) => Ok(message),
                Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
                Err(e) => Err(e),
            }
        })?;
        Ok(found.map(|message| Link::from_message(&message)))
    }

    /// `RTM_NEWLINK` with `NLM_F_CREATE | NLM_F_EXCL`.
    pub fn add_link(&self, what: String, message: LinkMessage) -> Result<(), PlumbingError> {
        self.call(what, self.handle.link().add(message).execute())
    }

    /// `RTM_NEWLINK` on an existing link (`message` carries its index).
    pub fn set_link(&self, what: String, message: LinkMessage) -> Result<(), PlumbingError> {
        self.call(what, self.handle.link().set(message).execute())
    }

    /// Deletes the link named `name`; a link already gone is not an error.
    pub fn del_link(&self, name: &str) -> Result<(), PlumbingError> {
        let Some(link) = self.link(name)? else {
            return Ok(());
        };
        let request = self.handle.link().del(link.index).execute();
        self.call(format!("delete link {name}"), async move {
            match request.await {
                Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
                other => other,
            }
        })
    }

    pub fn set_up(&self, name: &str, index: u32) -> Result<(), PlumbingError> {
        let message = LinkUnspec::new_with_index(index).up().build();
        self.set_link(format!("set link {name} up"), message)
    }

    pub fn set_mtu(&self, name: &str, index: u32, mtu: u32) -> Result<(), PlumbingError> {
        let message = LinkUnspec::new_with_index(index).mtu(mtu).build();
        self.set_link(format!("set link {name} mtu {mtu}"), message)
    }

    pub fn add_address(&self, name: &str, index: u32, ip: Ipv4Addr) -> Result<(), PlumbingError> {
        let request = self
            .handle
            .address()
            .add(index, IpAddr::V4(ip), 32)
            .execute();
        self.call(format!("add address {ip}/32 to {name}"), request)
    }

    /// A route out of link `index`: to `dst/len` on the link itself (scope link) when there is
    /// no gateway, else through `gateway`.
    pub fn add_route(
        &self,
        name: &str,
        index: u32,
        (dst, len): (Ipv4Addr, u8),
        gateway: Option<Ipv4Addr>,
    ) -> Result<(), PlumbingError> {
        // RTPROT_BOOT, as `ip route add` sets: routes configured by hand, not by a daemon.
        let mut route = RouteMessageBuilder::<Ipv4Addr>::new()
            .protocol(RouteProtocol::Boot)
            .destination_prefix(dst, len)
            .output_interface(index);
        route = match gateway {
            Some(gw) => route.gateway(gw),
            None => route.scope(RouteScope::Link),
        };
        let request = self.handle.route().add(route.build()).execute();
        let via = gateway.map(|gw| format!(" via {gw}")).unwrap_or_default();
        self.call(format!("add route {dst}/{len}{via} dev {name}"), request)
    }

    /// The IPv4 addresses on link `index` with their prefix lengths.
    pub fn addresses(&self, index: u32) -> Result<Vec<(Ipv4Addr, u8)>, PlumbingError> {
        let request = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let messages = self.call("list addresses".into(), request.try_collect::<Vec<_>>())?;
        Ok(messages
            .iter()
            .filter(|m| m.header.index == index)
            .flat_map(|m| {
                m.attributes.iter().filter_map(move |a| match *a {
                    AddressAttribute::Address(IpAddr::V4(ip)) => Some((ip, m.header.prefix_len)),
                    _ => None,
                })
            })
            .collect())
    }

    /// Every qdisc of every link (`tc qdisc show`).
    pub fn qdiscs(&self) -> Result<Vec<TcMessage>, PlumbingError> {
        let request = self.handle.qdisc().get().execute();
        self.call("list qdiscs".into(), request.try_collect::<Vec<_>>())
    }

    /// The filters under link `index`'s ingress qdisc (`tc filter show dev X ingress`).
    pub fn ingress_filters(&self, index: u32) -> Result<Vec<TcMessage>, PlumbingError> {
        let index = i32::try_from(index).map_err(|_| PlumbingError {
            command: format!("list ingress filters of link {index} in {}", self.place),
            detail: "no such link index".into(),
        })?;
        let request = self.handle.traffic_filter(index).get().ingress().execute();
        self.call(
            format!("list ingress filters of link {index}"),
            request.try_collect::<Vec<_>>(),
        )
    }

    /// The gateways of the main table's IPv4 default routes.
    pub fn default_gateways(&self) -> Result<Vec<Ipv4Addr>, PlumbingError> {
        let request = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let routes = self.call("list routes".into(), request.try_collect::<Vec<_>>())?;
        Ok(routes
            .iter()
            .filter(|r| r.header.destination_prefix_length == 0)
            .flat_map(|r| {
                r.attributes.iter().filter_map(|a| match *a {
                    RouteAttribute::Gateway(RouteAddress::Inet(gw)) => Some(gw),
                    _ => None,
                })
            })
            .collect())
    }
}

impl Link {
    fn from_message(message: &LinkMessage) -> Link {
        let mut link = Link {
            index: message.header.index,
            mac: Vec::new(),
            kind: None,
            tun: Vec::new(),
        };
        for attribute in &message.attributes {
            match attribute {
                LinkAttribute::Address(mac) => link.mac = mac.clone(),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => link.kind = Some(kind.clone()),
                            LinkInfo::Data(InfoData::Tun(nlas)) => {
                                link.tun = nlas.iter().map(nla_bytes).collect();
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }

    /// The MAC as six lowercase hex octets joined by colons.
    pub fn mac_text(&self) -> String {
        format_mac(&self.mac)
    }

    /// The value of `IFLA_TUN_*` attribute `kind` (one octet for the flags), if reported.
    pub fn tun_u8(&self, kind: u16) -> Option<u8> {
        self.tun
            .iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, v)| v.first().copied())
    }
}

pub fn format_mac(octets: &[u8]) -> String {
    octets
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn nla_bytes(nla: &impl rtnetlink::packet_core::Nla) -> (u16, Vec<u8>) {
    let mut value = vec![0; nla.value_len()];
    nla.emit_value(&mut value);
    (nla.kind(), value)
}

/// The errno of a kernel refusal.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(message) => Some(message.raw_code().abs()),
        _ => None,
    }
}

fn describe(e: &rtnetlink::Error) -> String {
    match errno(e) {
        Some(code) => std::io::Error::from_raw_os_error(code).to_string(),
        None => e.to_string(),
    }
}
