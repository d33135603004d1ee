//! An apply: read what is, plan (see `plan` for the order of the steps and why), and perform
//! the steps on the live dataplane.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fastpath::Tables;

use super::plan::{self, Current, Facts, Served, Step};
use super::ports::{LivePort, COMMAND_TIMEOUT};
use super::{refused, ApplyFailure, ApplyReport, Dataplane, DataplaneError, DesiredState};
use crate::hostveth;

/// New failures logged one by one per apply; the rest are counted in one line.
const MAX_LOGGED_FAILURES: usize = 20;

/// What an apply has done so far, carried from step to step.
#[derive(Default)]
struct Run {
    report: ApplyReport,
    /// The pair to the node's stack is there.
    host_pair: bool,
    /// Ports out of the tables, not yet out of the workers, and the last tables that routed
    /// to them.
    withdrawn: VecDeque<LivePort>,
    last_routed: Option<Arc<Tables>>,
    /// Ports taken out, kept until the apply ends (their NIC tuning is put back then).
    removed: Vec<LivePort>,
    /// What the first publish rejected; it counts only when no port is added.
    held: Vec<ApplyFailure>,
    /// Ports opened and not yet attached.
    opened: VecDeque<LivePort>,
    /// Ports opened that could not be attached.
    unattached: Vec<LivePort>,
}

impl Dataplane {
    /// Brings the dataplane to `desired`, changing only what differs (see the module docs).
    pub fn apply(&mut self, desired: &DesiredState) -> Result<ApplyReport, DataplaneError> {
        let mut run = Run::default();
        let steps = plan::prepare(&self.current(), desired);
        self.execute(steps, desired, &mut run)?;
        let facts = self.read_facts(desired, run.host_pair);
        let steps = plan::reconcile(&self.current(), desired, &facts);
        self.execute(steps, desired, &mut run)?;
        let mut report = std::mem::take(&mut run.report);
        // Replaced interfaces were counted as removed and added; report them once, as added.
        report.removed.retain(|n| !report.added.contains(n));
        self.record(&report);
        Ok(report)
    }

    /// The live dataplane as the plan sees it.
    fn current(&self) -> Current<'_> {
        let ports = self.ports.iter().map(|(name, p)| {
            let served = Served {
                kind: p.info.kind,
                ifindex: p.info.ifindex,
                mtu: p.info.mtu,
                ips: &p.ips,
                addrs: &p.addrs,
                tap: p.tap,
            };
            (name.as_str(), served)
        });
        Current {
            pools: self.pools.as_deref(),
            host_path_on: self.host_path_on(),
            ports: ports.collect(),
        }
    }

    /// Reads every wanted interface.
    fn read_facts(&self, desired: &DesiredState, host_pair: bool) -> Facts {
        // One address dump for all interfaces: asking per interface made an apply cost grow
        // with the square of the number of workloads.
        let addresses = crate::host::ipv4_addresses_by_interface();
        let (wanted, _) = plan::wanted(desired, host_pair);
        let interfaces = wanted
            .into_iter()
            .map(|(name, w)| {
                let facts = match w.tap {
                    None => crate::host::interface_with_addresses(name, &addresses),
                    Some(tap) => crate::host::tap_interface(name, tap),
                };
                (name.to_owned(), facts)
            })
            .collect();
        Facts {
            host_pair,
            interfaces,
            kernel_end_exists: hostveth::exists(hostveth::KERNEL_END),
        }
    }

    fn execute(
        &mut self,
        steps: Vec<Step>,
        desired: &DesiredState,
        run: &mut Run,
    ) -> Result<(), DataplaneError> {
        for step in steps {
            match step {
                Step::SetPools(pools) => {
                    let cidrs: Vec<_> = pools.iter().map(|p| (p.addr(), p.len())).collect();
                    self.program
                        .set_pool_cidrs(&cidrs)
                        .map_err(DataplaneError::Pools)?;
                    self.pools = Some(pools);
                }
                Step::StopHostPath => self.stop_host_path(&mut run.report),
                Step::EnsureHostPair { uplink, kind } => match self.ensure_host_pair(&uplink, kind)
                {
                    Ok(()) => run.host_pair = true,
                    Err(e) => run.report.failures.push(refused(
                        "host endpoint",
                        format!("creating the host veth pair: {e}"),
                    )),
                },
                Step::Fail(failure) => run.report.failures.push(failure),
                Step::Readdress { name, ips, addrs } => {
                    let Some(live) = self.ports.get_mut(&name) else {
                        continue;
                    };
                    if let Some(ips) = ips {
                        live.ips = ips;
                        run.report.updated.push(name);
                    }
                    live.addrs = addrs;
                }
                Step::Withdraw(names) => {
                    run.withdrawn = names.iter().filter_map(|n| self.ports.remove(n)).collect();
                    run.last_routed = Some(self.tables.load_full());
                }
                Step::Publish => {
                    let mut interim = ApplyReport::default();
                    self.publish(desired, &[], &mut interim);
                    run.held = interim.failures;
                }
                Step::Remove { name, replaced } => {
                    let Some(live) = take_named(&mut run.withdrawn, &name) else {
                        continue;
                    };
                    self.remove(live, run)?;
                    if !replaced {
                        run.report.removed.push(name);
                    }
                }
                Step::Open {
                    kind,
                    ips,
                    facts,
                    tap,
                } => match match tap {
                    None => self.open_port(&facts, kind, &ips),
                    Some(tap) => self.open_tap_port(&facts, kind, &tap, &ips),
                } {
                    Ok(live) => run.opened.push_back(live),
                    Err(failure) => run.report.failures.push(failure),
                },
                Step::PublishOpened => {
                    if run.opened.is_empty() {
                        run.report.failures.append(&mut run.held);
                    } else {
                        for worker in &self.commands {
                            worker.sync(COMMAND_TIMEOUT)?;
                        }
                        self.publish(desired, run.opened.make_contiguous(), &mut run.report);
                    }
                }
                Step::Attach(name) => {
                    if let Some(live) = take_named(&mut run.opened, &name) {
                        self.attach_opened(live, run);
                    }
                }
                Step::DropUnattached => self.drop_unattached(desired, run)?,
                Step::StartHostPath => self.start_host_path(desired, &mut run.report),
                Step::RoutePoolsToVrouter => self.route_pools_to_vrouter(desired, &mut run.report),
                Step::RemoveHostPair => self.remove_host_pair(),
            }
        }
        Ok(())
    }

    /// Detaches a withdrawn port, takes its sockets out of the workers and frees its id.
    fn remove(&mut self, mut live: LivePort, run: &mut Run) -> Result<(), DataplaneError> {
        // Detach first: from here on the kernel gets the interface's packets.
        drop(live.attachment.take());
        for slot in live.worker_slots() {
            // Dropping the port closes the socket, which takes it out of the XSKMAP.
            self.remove_everywhere(slot)?;
        }
        let last = run
            .last_routed
            .get_or_insert_with(|| self.tables.load_full());
        self.ids.release(live.id, last);
        tracing::info!(interface = %live.info.name, id = live.id, "port removed");
        run.removed.push(live);
        Ok(())
    }

    fn attach_opened(&mut self, mut live: LivePort, run: &mut Run) {
        if live.tap {
            // A TAP has no XDP program: its frames reach the worker once it has the port.
            tracing::info!(interface = %live.info.name, id = live.id, "TAP attached");
            run.report.added.push(live.info.name.clone());
            self.ports.insert(live.info.name.clone(), live);
            return;
        }
        match self.attach(&live) {
            Ok(a) => {
                tracing::info!(interface = %live.info.name, id = live.id, kind = ?live.info.kind, mode = ?a.mode(), "attached");
                live.attachment = Some(a);
                run.report.added.push(live.info.name.clone());
                self.ports.insert(live.info.name.clone(), live);
            }
            Err(e) => {
                run.report
                    .failures
                    .push(refused(&live.info.name, format!("attaching XDP: {e}")));
                run.unattached.push(live);
            }
        }
    }

    /// Publishes tables without the ports that did not attach, then takes them out of the
    /// workers.
    fn drop_unattached(
        &mut self,
        desired: &DesiredState,
        run: &mut Run,
    ) -> Result<(), DataplaneError> {
        if run.unattached.is_empty() {
            return Ok(());
        }
        let before = self.tables.load_full();
        self.publish(desired, &[], &mut ApplyReport::default());
        for live in std::mem::take(&mut run.unattached) {
            for slot in live.worker_slots() {
                self.remove_everywhere(slot)?;
            }
            self.ids.release(live.id, &before);
        }
        Ok(())
    }

    /// Shows the apply's outcome to stats and metrics, and logs what is new in it.
    fn record(&self, report: &ApplyReport) {
        self.observed.ports.store(Arc::new(self.port_status()));
        // Each failure is logged when it first appears, not on every retry: with thousands of
        // endpoints whose interfaces are not there yet, a line each per second drowns the log.
        let previous = self
            .observed
            .failures
            .swap(Arc::new(report.failures.clone()));
        self.observed.applies.fetch_add(1, Ordering::Relaxed);
        let seen: std::collections::HashSet<(&str, &str)> = previous
            .iter()
            .map(|f| (f.item.as_str(), f.error.as_str()))
            .collect();
        let new_failures: Vec<&ApplyFailure> = report
            .failures
            .iter()
            .filter(|f| !seen.contains(&(f.item.as_str(), f.error.as_str())))
            .collect();
        for f in new_failures.iter().take(MAX_LOGGED_FAILURES) {
            tracing::warn!(item = %f.item, kind = ?f.kind, error = %f.error, "not programmed; will retry on the next apply");
        }
        if new_failures.len() > MAX_LOGGED_FAILURES {
            tracing::warn!(
                more = new_failures.len() - MAX_LOGGED_FAILURES,
                total = report.failures.len(),
                "more items not programmed (see `brindle-node stats`)"
            );
        }
        if !(report.added.is_empty() && report.removed.is_empty() && report.updated.is_empty()) {
            tracing::info!(added = ?report.added, removed = ?report.removed, updated = ?report.updated, "dataplane changed");
        }
    }
}

/// Takes the port of interface `name` out of `ports`; steps come in the order the ports went
/// in, so it is found at the front.
fn take_named(ports: &mut VecDeque<LivePort>, name: &str) -> Option<LivePort> {
    let at = ports.iter().position(|p| p.info.name == name)?;
    ports.remove(at)
}
