//! The plan of an apply: the steps that bring the running dataplane from what it is to what
//! is desired, in an order that never sends a packet into a hole.
//!
//! Pure, like `programme`: the live dataplane is seen only as [`Current`] and the interfaces
//! only as [`Facts`], so every ordering rule below is tested without root or any interface;
//! `execute` performs the steps. What only a step's outcome can tell (a socket that does not
//! open, an attach the driver refuses) is the executor's: a port that did not open is not
//! attached, and [`Step::DropUnattached`] takes out one that did not attach.
//!
//! An apply plans twice. [`prepare`] plans what comes before the interfaces are read, because
//! the vRouter's end of the pair to the node's stack can be read only once the pair is there;
//! [`reconcile`] plans the rest from the [`Facts`] read then.
//!
//! The ordering rules, each tested below:
//!
//! 1. The pool CIDRs go to the XDP program before anything else changes (when they cannot,
//!    the apply fails with nothing else changed).
//! 2. A host endpoint going: the node's own traffic is handed back to the kernel before the
//!    pair or any port is touched.
//! 3. With an uplink, the pair to the node's stack is made (or kept) before any interface is
//!    read; once there, its vRouter end is a wanted port (the host port).
//! 4. An interface named both as the uplink and as a workload is refused, and is neither.
//! 5. A wanted interface that cannot be read is reported (`Missing` when it is not there yet:
//!    the CNI plugin may write an endpoint before its veth exists) and is not served; a served
//!    one that cannot be read any more goes.
//! 6. New addresses of ports that stay are in place before the first publish.
//! 7. Ports that go (no longer wanted, gone, or recreated with another ifindex, MTU or kind)
//!    first leave the tables (packets to them now get ICMP unreachable), then are detached
//!    (the kernel gets their packets), then leave the workers (which closes their sockets).
//!    That publish happens in every apply, whether or not a port goes: changed addresses,
//!    routes and policies take effect there.
//! 8. New ports: each is opened and handed to its workers, then one barrier for all (every
//!    worker has them), then tables that route to them are published, and only then is each
//!    attached, from which moment its packets reach its socket. One that does not attach
//!    leaves the tables and the workers again.
//! 9. A recreated interface is removed before its new port opens (they share the name) and is
//!    reported once, as added.
//! 10. The node's own traffic goes round the vRouter (a host endpoint) only after every port
//!     is attached: the host port and the uplink must both be served, and the tables police
//!     it.
//! 11. The pools (and floating IPs) are routed from the node's stack to the vRouter after every port is
//!     attached (through the host port, once it is served).
//! 12. Without an uplink, the pair is deleted last, once its port has left the vRouter.
//!
//! A workload with a TAP (`WorkloadConfig::tap`) is read in its own namespace, opened by
//! attaching to its TAP, and has nothing to attach an XDP program to; a port that changes
//! between veth and TAP is recreated.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::LazyLock;

use fastpath::PortKind;

use super::{refused, ApplyFailure, DesiredState, FailureKind};
use crate::config::TapWorkload;
use crate::host::{InterfaceError, InterfaceFacts, Ipv4Prefix};
use crate::hostveth::{self, HostPort};

/// The live dataplane, as far as planning needs it.
#[derive(Debug, Default)]
pub struct Current<'a> {
    /// The pools (and floating IPs) the XDP program has; `None` before the first apply.
    pub pools: Option<&'a [Ipv4Prefix]>,
    /// Whether any part of the node's own traffic goes round the vRouter now.
    pub host_path_on: bool,
    /// The ports served, by interface name.
    pub ports: BTreeMap<&'a str, Served<'a>>,
}

/// A port the dataplane serves.
#[derive(Clone, Copy, Debug)]
pub struct Served<'a> {
    pub kind: PortKind,
    pub ifindex: u32,
    pub mtu: u16,
    /// Workload addresses (empty for the uplink and the host port).
    pub ips: &'a [Ipv4Addr],
    /// The interface's IPv4 addresses.
    pub addrs: &'a [(Ipv4Addr, u8)],
    /// A workload's TAP rather than an AF_XDP socket.
    pub tap: bool,
}

/// What the host says, read after the [`prepare`] steps ran.
#[derive(Debug, Default)]
pub struct Facts {
    /// The pair to the node's stack is there (false without an uplink, or when making it
    /// failed).
    pub host_pair: bool,
    /// Each interface of [`wanted`] as it is now, or why it cannot be read.
    pub interfaces: BTreeMap<String, Result<InterfaceFacts, InterfaceError>>,
    /// The kernel's end of the pair exists (a previous run may have left it).
    pub kernel_end_exists: bool,
}

/// A port the desired state asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wanted<'a> {
    pub kind: PortKind,
    /// Workload addresses (empty for the uplink and the host port).
    pub ips: &'a [Ipv4Addr],
    /// A workload whose interface is a TAP the node attaches to.
    pub tap: Option<&'a TapWorkload>,
}

/// One thing an apply does.
#[derive(Debug)]
pub enum Step {
    /// Writes the pool CIDRs to the XDP program; failing fails the apply.
    SetPools(Vec<Ipv4Prefix>),
    /// Hands the node's own traffic back to the kernel: the TC program first, then the XDP
    /// program's host entry.
    StopHostPath,
    /// Makes the pair (or TAP) to the node's stack with the uplink's MTU (or keeps the one
    /// there).
    EnsureHostPair { uplink: String, kind: HostPort },
    /// Reports an item the facts already say cannot be programmed.
    Fail(ApplyFailure),
    /// New addresses for a port that stays: the workload's when they changed (reported as
    /// updated), the interface's.
    Readdress {
        name: String,
        ips: Option<Vec<Ipv4Addr>>,
        addrs: Vec<(Ipv4Addr, u8)>,
    },
    /// Takes ports out of those the tables are built from; they still run until removed.
    Withdraw(Vec<String>),
    /// Publishes tables for the ports served. What they reject is held back: when a port is
    /// added, only the rejections of the tables with it count (a route through an uplink not
    /// yet served is rejected here only).
    Publish,
    /// Detaches a withdrawn port, takes its sockets out of the workers and frees its id once
    /// no tables route to it. `replaced`: a new port of the same name follows.
    Remove { name: String, replaced: bool },
    /// Opens a new port's sockets (or attaches to its TAP) and hands them to their workers.
    Open {
        kind: PortKind,
        ips: Vec<Ipv4Addr>,
        facts: InterfaceFacts,
        tap: Option<TapWorkload>,
    },
    /// Waits until every worker has the opened ports and publishes tables that route to
    /// them; when none opened, the rejections [`Step::Publish`] held back count.
    PublishOpened,
    /// Attaches the XDP program to an opened port.
    Attach(String),
    /// Takes the opened ports that did not attach out of the tables and the workers.
    DropUnattached,
    /// Sends the node's own traffic round the vRouter: failsafe ports first, then the XDP
    /// program's host entry (to the node), then the TC program (from it).
    StartHostPath,
    /// Routes the pools from the node's stack to the vRouter's end of the pair.
    RoutePoolsToVrouter,
    /// Deletes the pair to the node's stack.
    RemoveHostPair,
}

/// The TAP to the node's stack (`HostPort::Tap`), in the node's own namespace.
static HOST_TAP: LazyLock<TapWorkload> = LazyLock::new(|| TapWorkload {
    netns: "/proc/self/ns/net".into(),
    ifname: hostveth::KERNEL_END.into(),
});

/// What comes before the interfaces are read (rules 1 to 3).
pub fn prepare(current: &Current, desired: &DesiredState) -> Vec<Step> {
    let mut steps = Vec::new();
    let destinations = desired.vrouter_destinations();
    if current.pools != Some(destinations.as_slice()) {
        steps.push(Step::SetPools(destinations));
    }
    if !host_endpoint_wanted(desired) && current.host_path_on {
        steps.push(Step::StopHostPath);
    }
    if let Some(uplink) = &desired.uplink {
        steps.push(Step::EnsureHostPair {
            uplink: uplink.clone(),
            kind: desired.host_port,
        });
    }
    steps
}

/// The ports `desired` asks for, by interface name, and the failure of an interface named as
/// both the uplink and a workload (rule 4). `host_pair`: the pair is there, so its vRouter
/// end is wanted.
pub fn wanted(
    desired: &DesiredState,
    host_pair: bool,
) -> (BTreeMap<&str, Wanted<'_>>, Option<ApplyFailure>) {
    let mut wanted: BTreeMap<&str, Wanted> = desired
        .workloads
        .iter()
        .map(|w| {
            let port = Wanted {
                kind: PortKind::Workload,
                ips: &w.ips,
                tap: w.tap.as_ref(),
            };
            (w.interface.as_str(), port)
        })
        .collect();
    let Some(uplink) = desired.uplink.as_deref() else {
        return (wanted, None);
    };
    if host_pair {
        let host = Wanted {
            kind: PortKind::Host,
            ips: &[],
            tap: (desired.host_port == HostPort::Tap).then(|| &*HOST_TAP),
        };
        wanted.insert(desired.host_port.vrouter_end(), host);
    }
    if wanted.remove(uplink).is_some() {
        let failure = refused(uplink, "named both as the uplink and as a workload".into());
        return (wanted, Some(failure));
    }
    let port = Wanted {
        kind: PortKind::Uplink,
        ips: &[],
        tap: None,
    };
    wanted.insert(uplink, port);
    (wanted, None)
}

/// Everything after the interfaces are read (rules 4 to 12).
pub fn reconcile(current: &Current, desired: &DesiredState, facts: &Facts) -> Vec<Step> {
    let mut steps = Vec::new();
    let (wanted, conflict) = wanted(desired, facts.host_pair);
    steps.extend(conflict.map(Step::Fail));

    let mut readable: BTreeMap<&str, &InterfaceFacts> = BTreeMap::new();
    for &name in wanted.keys() {
        match facts.interfaces.get(name) {
            Some(Ok(f)) => {
                readable.insert(name, f);
            }
            Some(Err(e)) => steps.push(Step::Fail(unreadable(name, e))),
            None => steps.push(Step::Fail(unreadable(
                name,
                &InterfaceError::Missing(name.to_owned()),
            ))),
        }
    }

    let stays = |name: &str, served: &Served| match (wanted.get(name), readable.get(name)) {
        (Some(w), Some(f)) => {
            w.kind == served.kind
                && w.tap.is_some() == served.tap
                && f.ifindex == served.ifindex
                && f.mtu == served.mtu
        }
        _ => false,
    };
    let mut going = Vec::new();
    for (&name, served) in &current.ports {
        if !stays(name, served) {
            going.push(name.to_owned());
            continue;
        }
        let ips = wanted[name].ips;
        let addrs = &readable[name].addrs;
        if ips != served.ips || addrs.as_slice() != served.addrs {
            steps.push(Step::Readdress {
                name: name.to_owned(),
                ips: (ips != served.ips).then(|| ips.to_vec()),
                addrs: addrs.clone(),
            });
        }
    }

    if !going.is_empty() {
        steps.push(Step::Withdraw(going.clone()));
    }
    steps.push(Step::Publish);
    for name in going {
        let replaced = readable.contains_key(name.as_str());
        steps.push(Step::Remove { name, replaced });
    }

    let opening: Vec<&str> = readable
        .keys()
        .copied()
        .filter(|name| !current.ports.get(name).is_some_and(|s| stays(name, s)))
        .collect();
    for &name in &opening {
        steps.push(Step::Open {
            kind: wanted[name].kind,
            ips: wanted[name].ips.to_vec(),
            facts: readable[name].clone(),
            tap: wanted[name].tap.cloned(),
        });
    }
    steps.push(Step::PublishOpened);
    for &name in &opening {
        steps.push(Step::Attach(name.to_owned()));
    }
    if !opening.is_empty() {
        steps.push(Step::DropUnattached);
    }

    if host_endpoint_wanted(desired) {
        steps.push(Step::StartHostPath);
    }
    if desired.uplink.is_some() {
        steps.push(Step::RoutePoolsToVrouter);
    } else if facts.kernel_end_exists {
        steps.push(Step::RemoveHostPair);
    }
    steps
}

/// The node's own traffic through the uplink goes round the vRouter: there is a host
/// endpoint, and an uplink for the pair it takes.
fn host_endpoint_wanted(desired: &DesiredState) -> bool {
    desired.uplink.is_some() && desired.host_endpoint.is_some()
}

fn unreadable(name: &str, e: &InterfaceError) -> ApplyFailure {
    let kind = match e {
        InterfaceError::Missing(_) | InterfaceError::MissingTap { .. } => FailureKind::Missing,
        _ => FailureKind::Refused,
    };
    ApplyFailure {
        item: name.to_owned(),
        kind,
        error: e.to_string(),
    }
}

#[cfg(test)]
mod tests;
