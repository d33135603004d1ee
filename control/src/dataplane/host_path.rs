//! The way between the node's own stack and the vRouter: the veth pair (see `hostveth`), the
//! pools routed through it, and, with a host endpoint, the node's own traffic through the
//! uplink sent round the vRouter to be policed.

use fastpath::PortKind;

use super::{refused, ApplyReport, Dataplane, DesiredState};
use crate::hostveth::{self, HostPort};

impl Dataplane {
    /// Creates the pair to the node's stack with the uplink's MTU, unless the one there already
    /// has it (setting it up runs several commands: not on every apply); keeps its kernel end's
    /// facts for the tables and the BPF maps.
    pub(super) fn ensure_host_pair(&mut self, uplink: &str, kind: HostPort) -> Result<(), String> {
        let mtu = crate::host::interface(uplink).map_or(1500, |f| f.mtu);
        let current = crate::host::interface(hostveth::KERNEL_END).ok();
        let kept = self
            .host_kernel_end
            .as_ref()
            .zip(current.as_ref())
            .is_some_and(|(kept, now)| kept.ifindex == now.ifindex && now.mtu == mtu)
            && HostPort::of(hostveth::KERNEL_END) == Some(kind);
        if !kept {
            hostveth::ensure(mtu, kind)?;
            self.host_kernel_end =
                Some(crate::host::interface(hostveth::KERNEL_END).map_err(|e| e.to_string())?);
        }
        Ok(())
    }

    /// Sends the node's own traffic round the vRouter, once the host port and the uplink are
    /// served and the tables police it: failsafe ports first, then the XDP program's host
    /// entry (to the node), then the TC program (from it).
    pub(super) fn start_host_path(&mut self, desired: &DesiredState, report: &mut ApplyReport) {
        let Some(host) = &desired.host_endpoint else {
            return;
        };
        let tables = self.tables.load();
        let (Some(path), Some(uplink)) = (
            tables.host.as_ref(),
            tables
                .ports
                .get(usize::from(tables.host.as_ref().map_or(0, |h| h.uplink))),
        ) else {
            return; // a port is missing: reported where it failed; retried on the next apply
        };
        let attached = |id| self.ports.values().any(|p| p.id == id && p.serving());
        if !attached(path.port) || !attached(path.uplink) {
            return;
        }
        let node = uplink.ip;
        let failsafe = (
            host.failsafe_inbound.clone(),
            host.failsafe_outbound.clone(),
        );
        if self.failsafe.as_ref() != Some(&failsafe) {
            match self.program.set_failsafe_ports(&failsafe.0, &failsafe.1) {
                Ok(()) => self.failsafe = Some(failsafe),
                Err(e) => {
                    return report
                        .failures
                        .push(refused("host endpoint", format!("failsafe ports: {e}")))
                }
            }
        }
        let Some(kernel_ifindex) = self.host_kernel_end.as_ref().map(|f| f.ifindex) else {
            return report.failures.push(refused(
                "host endpoint",
                format!("{} has gone", hostveth::KERNEL_END),
            ));
        };
        if self.host_bpf != Some((node, kernel_ifindex)) {
            match self.program.set_host(Some((node, kernel_ifindex))) {
                Ok(()) => self.host_bpf = Some((node, kernel_ifindex)),
                Err(e) => {
                    return report
                        .failures
                        .push(refused("host endpoint", e.to_string()))
                }
            }
        }
        if self
            .host_egress
            .as_ref()
            .is_some_and(|l| l.ifindex() != uplink.ifindex)
        {
            self.host_egress = None;
        }
        if self.host_egress.is_none() {
            match self.program.attach_host_egress(uplink.ifindex) {
                Ok(link) => {
                    tracing::info!(uplink = %uplink.name, %node, "host endpoint enforced: the node's own traffic passes the vRouter");
                    self.host_egress = Some(link);
                }
                Err(e) => report
                    .failures
                    .push(refused("host endpoint", e.to_string())),
            }
        }
    }

    /// Routes the pools from the node's stack to the vRouter through the pair, once its port
    /// is served (until then the kernel keeps whatever it had).
    pub(super) fn route_pools_to_vrouter(
        &mut self,
        desired: &DesiredState,
        report: &mut ApplyReport,
    ) {
        let Some(port) = self
            .ports
            .values()
            .find(|p| p.info.kind == PortKind::Host && p.serving())
        else {
            return;
        };
        let mac = port.info.mac;
        let src = self
            .ports
            .values()
            .find(|p| p.info.kind == PortKind::Uplink)
            .and_then(|p| p.addrs.first())
            .map(|(ip, _)| *ip);
        // The floating IPs too: the node's own traffic to them is destination-NATed in the
        // vRouter (Felix's `cali-fip-dnat` in OUTPUT).
        let wanted = (desired.vrouter_destinations(), src);
        if self.host_routes.as_ref() == Some(&wanted) {
            return;
        }
        let previous = self
            .host_routes
            .take()
            .map(|(pools, _)| pools)
            .unwrap_or_default();
        match hostveth::route_pools(&wanted.0, &previous, src, mac) {
            Ok(()) => self.host_routes = Some(wanted),
            Err(e) => report.failures.push(refused(
                "host routes",
                format!("routing the pools to the vRouter: {e}"),
            )),
        }
    }

    /// Leaves the node's own traffic to the kernel again: the TC program first, then the XDP
    /// program's host entry.
    pub(super) fn stop_host_path(&mut self, report: &mut ApplyReport) {
        if self.host_egress.take().is_some() {
            tracing::info!(
                "host endpoint no longer enforced: the node's own traffic stays with the kernel"
            );
        }
        if self.host_bpf.is_some() {
            match self.program.set_host(None) {
                Ok(()) => self.host_bpf = None,
                Err(e) => report
                    .failures
                    .push(refused("host endpoint", e.to_string())),
            }
        }
    }

    /// Deletes the pair, and with it the pool routes through it.
    pub(super) fn remove_host_pair(&mut self) {
        hostveth::remove();
        self.host_kernel_end = None;
        self.host_routes = None;
    }

    /// Whether any part of the node's own traffic goes round the vRouter now.
    pub(super) fn host_path_on(&self) -> bool {
        self.host_egress.is_some() || self.host_bpf.is_some()
    }
}
