//! The ports the dataplane serves: opening one (its AF_XDP sockets, handed to the workers),
//! attaching the XDP program to it, and taking it out of the workers again.

use std::net::Ipv4Addr;
use std::time::Duration;

use fastpath::frame_sizes::XDP_HEADROOM;
use fastpath::handoff;
use fastpath::port::{Port, PortConfig, TapPort};
use fastpath::worker::PortCommand;
use fastpath::xdp::{Attachment, XdpError};
use fastpath::XdpMode;
use fastpath::{MacAddr, PortId, PortInfo, PortKind};

use super::settings::{SysfsTuning, MAX_UPLINK_QUEUES, UPLINK_FIRST_SLOT};
use super::{refused, ApplyFailure, Dataplane, DataplaneError};
use crate::config::TapWorkload;
use crate::host::InterfaceFacts;
use crate::programme;

/// How long control waits for a worker to take a command.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// A port that is open, in the worker and attached.
pub(super) struct LivePort {
    pub(super) id: PortId,
    pub(super) info: PortInfo,
    /// Workload addresses (empty for the uplink).
    pub(super) ips: Vec<Ipv4Addr>,
    /// The interface's IPv4 addresses (used for the uplink).
    pub(super) addrs: Vec<(Ipv4Addr, u8)>,
    pub(super) attachment: Option<Attachment>,
    /// The port's XSKMAP slots: `first_slot + queue` for each of `queues` queues. Queue 0's
    /// socket sits at the port's id in the worker, the others at their XSKMAP slot.
    pub(super) first_slot: u32,
    pub(super) queues: u32,
    /// A workload's TAP (no XDP program, one port in one worker).
    pub(super) tap: bool,
    /// The uplink's NAPI settings from its profile, restored when the port goes (held only
    /// for its Drop).
    #[allow(dead_code)]
    pub(super) sysfs: Option<SysfsTuning>,
}

impl LivePort {
    /// Its frames reach the workers: attached to the XDP program, or a TAP.
    pub(super) fn serving(&self) -> bool {
        self.tap || self.attachment.is_some()
    }

    /// The worker slots of the port's sockets: its id (queue 0), then the other queues'.
    pub(super) fn worker_slots(&self) -> Vec<PortId> {
        std::iter::once(self.id)
            .chain((1..self.queues).map(|q| (self.first_slot + q) as PortId))
            .collect()
    }
}

impl Dataplane {
    /// Opens the AF_XDP sockets of a wanted interface and hands them to the workers.
    pub(super) fn open_port(
        &mut self,
        f: &InterfaceFacts,
        kind: PortKind,
        ips: &[Ipv4Addr],
    ) -> Result<LivePort, ApplyFailure> {
        // A frame that does not hold the interface's largest packet is dropped by the kernel
        // after XDP redirected it: a black hole for every full-sized packet. Refuse instead.
        let Some(frame_size) = PortConfig::frame_size_for_mtu(f.mtu) else {
            return Err(refused(
                &f.name,
                format!(
                    "interface {} has MTU {}; AF_XDP frames hold at most {} bytes of packet, so lower its MTU",
                    f.name,
                    f.mtu,
                    4096 - XDP_HEADROOM - 14
                ),
            ));
        };
        let Some(id) = self.ids.allocate() else {
            return Err(refused(
                &f.name,
                format!("no free port id: at most {UPLINK_FIRST_SLOT} ports"),
            ));
        };
        let info = programme::port_info(f, kind);
        let mut config = PortConfig {
            frame_size,
            ..PortConfig::default()
        };
        // Workloads (veths with one queue) use the slot of their id; the uplink one socket per
        // queue its profile asks for, in the slots reserved for it.
        let (first_slot, queues) = match (kind, self.uplink_tuning) {
            (PortKind::Uplink, Some(t)) => (
                UPLINK_FIRST_SLOT,
                t.queue_policy.queues(f.queues).min(MAX_UPLINK_QUEUES),
            ),
            (PortKind::Uplink, None) => (UPLINK_FIRST_SLOT, 1),
            (PortKind::Workload | PortKind::Host, _) => (u32::from(id), 1),
        };
        if let (PortKind::Uplink, Some(t)) = (kind, self.uplink_tuning) {
            config = PortConfig {
                frame_size: frame_size.max(t.frame_size),
                ring_size: t.ring_size,
                batch_size: t.batch_size,
                force_copy: t.force_copy,
                // Half the frames feed the fill ring, which takes them all at once only when
                // it has room for them: as many as its size.
                frames: 2 * t.ring_size,
                busy_poll: t.busy_poll,
            };
        }
        if kind == PortKind::Uplink {
            tracing::info!(uplink = %f.name, queues, available = f.queues, "serving the uplink's queues");
        }
        // Every socket is opened before any goes to the worker, so that a failure leaves
        // nothing half-installed (dropping the opened ones closes them).
        let mut sockets = Vec::with_capacity(queues as usize);
        for queue in 0..queues {
            match Port::open(id, &info, queue, &config, &self.program, first_slot + queue) {
                Ok(p) => sockets.push(p),
                Err(e) => {
                    self.ids.release_unused(id);
                    return Err(refused(
                        &f.name,
                        format!("opening the AF_XDP socket of queue {queue}: {e}"),
                    ));
                }
            }
        }
        // The uplink's queue q goes to worker q (at the port's id: each worker transmits on
        // the uplink through its own queue's socket), queues beyond the workers to worker
        // q % workers in a slot of their own; any other port to its owner.
        let workers = self.commands.len();
        for (queue, port) in sockets.into_iter().enumerate() {
            let (worker, command) = match (kind, queue) {
                (PortKind::Uplink, q) if q < workers => (q, PortCommand::AddPort(port)),
                (PortKind::Uplink, q) => (
                    q % workers,
                    PortCommand::AddQueue {
                        slot: (first_slot + q as u32) as PortId,
                        port,
                    },
                ),
                (_, 0) => (handoff::port_owner(id, workers), PortCommand::AddPort(port)),
                (_, q) => (
                    handoff::port_owner(id, workers),
                    PortCommand::AddQueue {
                        slot: (first_slot + q as u32) as PortId,
                        port,
                    },
                ),
            };
            if let Err(e) = self.commands[worker].send(command, COMMAND_TIMEOUT) {
                self.ids.release_unused(id);
                return Err(refused(&f.name, e.to_string()));
            }
        }
        let sysfs = match (kind, self.uplink_tuning) {
            (PortKind::Uplink, Some(t)) => Some(SysfsTuning::apply(
                &f.name,
                &[
                    ("napi_defer_hard_irqs", t.napi_defer_hard_irqs),
                    ("gro_flush_timeout", t.gro_flush_timeout_ns),
                ],
            )),
            _ => None,
        };
        Ok(LivePort {
            id,
            info,
            ips: ips.to_vec(),
            addrs: f.addrs.clone(),
            attachment: None,
            first_slot,
            queues,
            tap: false,
            sysfs,
        })
    }

    /// Attaches to a TAP (a workload's in its namespace, or the one to the node's stack) and
    /// hands the port to its worker.
    pub(super) fn open_tap_port(
        &mut self,
        f: &InterfaceFacts,
        kind: PortKind,
        tap: &TapWorkload,
        ips: &[Ipv4Addr],
    ) -> Result<LivePort, ApplyFailure> {
        let Some(id) = self.ids.allocate() else {
            return Err(refused(
                &f.name,
                format!("no free port id: at most {UPLINK_FIRST_SLOT} ports"),
            ));
        };
        let info = match kind {
            // The TAP's own MAC is the kernel's end's: the vRouter speaks as another host
            // on the link (the pools' next hop in the node's neighbour table).
            PortKind::Host => programme::port_info(
                &InterfaceFacts {
                    mac: MacAddr::CALICO_HOST_SIDE,
                    ..f.clone()
                },
                kind,
            ),
            _ => programme::port_info(f, kind),
        };
        let port = match TapPort::attach(id, &f.name, &tap.netns, &tap.ifname) {
            Ok(port) => port,
            Err(e) => {
                self.ids.release_unused(id);
                return Err(refused(&f.name, e.to_string()));
            }
        };
        let worker = handoff::port_owner(id, self.commands.len());
        if let Err(e) =
            self.commands[worker].send(PortCommand::AddPort(port.into()), COMMAND_TIMEOUT)
        {
            self.ids.release_unused(id);
            return Err(refused(&f.name, e.to_string()));
        }
        Ok(LivePort {
            id,
            info,
            ips: ips.to_vec(),
            addrs: Vec::new(),
            attachment: None,
            first_slot: u32::from(id),
            queues: 1,
            tap: true,
            sysfs: None,
        })
    }

    /// Attaches the XDP program to an opened port: the uplink as its NIC profile says,
    /// workloads (veths) and the host port natively.
    pub(super) fn attach(&self, port: &LivePort) -> Result<Attachment, XdpError> {
        let mode = match (port.info.kind, self.uplink_tuning) {
            (PortKind::Uplink, Some(t)) => t.xdp_mode,
            _ => XdpMode::Native,
        };
        self.program.attach_in_mode(
            port.info.ifindex,
            port.info.kind,
            port.queues,
            port.first_slot,
            mode,
        )
    }

    /// Takes whatever sits at worker slot `slot` out of every worker and closes it.
    pub(super) fn remove_everywhere(&self, slot: PortId) -> Result<(), DataplaneError> {
        for worker in &self.commands {
            drop(worker.remove_port(slot, COMMAND_TIMEOUT)?);
        }
        Ok(())
    }
}
