//! Control's channel to a running worker: ports come and go while it runs.
//!
//! Control sends [`PortCommand`]s on a bounded channel and rings the worker's eventfd; the
//! worker drains the channel once per loop iteration (never per packet). Ports sit in a
//! `Vec<Option<Port>>` at their `PortId`, so an id stays valid for a port's whole life and the
//! tables never have to be renumbered.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, SendTimeoutError, Sender, TryRecvError};

use crate::eventfd::EventFd;
use crate::ids::PortId;
use crate::port::Port;

/// A change to the set of ports a running worker serves.
// A Port is large, but commands are rare and the channel is bounded: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum PortCommand {
    /// Installs the port at its `PortId` (replacing, and dropping, whatever was there).
    AddPort(Port),
    /// Installs another queue's socket of a port at worker slot `slot` (a slot no `PortId`
    /// uses, e.g. the socket's XSKMAP slot). Its frames enter the pipeline as `port.id()`;
    /// what the tables send to that id leaves through the socket at the id's own slot.
    /// Removed with `RemovePort(slot)`.
    AddQueue { slot: PortId, port: Port },
    /// Takes the port out and sends it back (`None` if the slot was empty), so that the caller
    /// closes it after it has detached the XDP program from the interface.
    RemovePort(PortId, Sender<Option<Port>>),
    /// Answered once every command sent before it has been carried out: a barrier, so that
    /// control publishes routes to a new port only when the worker can transmit on it.
    Sync(Sender<()>),
}

impl std::fmt::Debug for PortCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortCommand::AddPort(p) => f.debug_tuple("AddPort").field(p).finish(),
            PortCommand::AddQueue { slot, port } => f
                .debug_struct("AddQueue")
                .field("slot", slot)
                .field("port", port)
                .finish(),
            PortCommand::RemovePort(id, _) => f.debug_tuple("RemovePort").field(id).finish(),
            PortCommand::Sync(_) => f.write_str("Sync"),
        }
    }
}

/// The worker has stopped (or does not take commands).
#[derive(Debug, thiserror::Error)]
pub enum PortCommandError {
    #[error("the fastpath worker has stopped")]
    WorkerGone,
    #[error("the fastpath worker did not take the command within {0:?}")]
    Timeout(Duration),
}

/// Control's end of a worker's command channel.
#[derive(Clone)]
pub struct PortCommandSender {
    commands: Sender<PortCommand>,
    wake: Arc<EventFd>,
}

/// The worker's end: polled once per loop iteration, and an eventfd that wakes a sleeping
/// interrupt-mode worker.
pub struct PortCommandReceiver {
    commands: Receiver<PortCommand>,
    wake: Arc<EventFd>,
}

/// Creates a worker's command channel with room for `depth` commands.
pub fn port_commands(depth: usize) -> std::io::Result<(PortCommandSender, PortCommandReceiver)> {
    let (tx, rx) = crossbeam_channel::bounded(depth.max(1));
    let wake = Arc::new(EventFd::new()?);
    Ok((
        PortCommandSender {
            commands: tx,
            wake: wake.clone(),
        },
        PortCommandReceiver { commands: rx, wake },
    ))
}

impl PortCommandSender {
    /// Queues `command` and wakes the worker; waits up to `timeout` for room in the queue.
    pub fn send(&self, command: PortCommand, timeout: Duration) -> Result<(), PortCommandError> {
        match self.commands.send_timeout(command, timeout) {
            Ok(()) => {
                self.wake.ring();
                Ok(())
            }
            Err(SendTimeoutError::Timeout(_)) => Err(PortCommandError::Timeout(timeout)),
            Err(SendTimeoutError::Disconnected(_)) => Err(PortCommandError::WorkerGone),
        }
    }

    /// Removes port `id` from the worker and returns it (`None` if the worker had no such port).
    pub fn remove_port(
        &self,
        id: PortId,
        timeout: Duration,
    ) -> Result<Option<Port>, PortCommandError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(PortCommand::RemovePort(id, tx), timeout)?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => PortCommandError::Timeout(timeout),
            crossbeam_channel::RecvTimeoutError::Disconnected => PortCommandError::WorkerGone,
        })
    }

    /// Waits until the worker has carried out every command sent before.
    pub fn sync(&self, timeout: Duration) -> Result<(), PortCommandError> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(PortCommand::Sync(tx), timeout)?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            crossbeam_channel::RecvTimeoutError::Timeout => PortCommandError::Timeout(timeout),
            crossbeam_channel::RecvTimeoutError::Disconnected => PortCommandError::WorkerGone,
        })
    }
}

impl PortCommandReceiver {
    pub(super) fn wake_fd(&self) -> RawFd {
        self.wake.raw_fd()
    }

    /// Carries out every waiting command; true when the set of ports changed. `retiring` sees
    /// each port (and its slot) just before it leaves the worker.
    pub(super) fn apply(
        &self,
        worker: &str,
        ports: &mut Vec<Option<Port>>,
        mut retiring: impl FnMut(usize, &Port),
    ) -> bool {
        let mut changed = false;
        let mut handled = 0;
        loop {
            let command = match self.commands.try_recv() {
                Ok(c) => c,
                Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
            };
            handled += 1;
            match command {
                PortCommand::AddPort(port) => {
                    tracing::debug!(worker, port = %port.name(), id = port.id(), "port added");
                    let at = usize::from(port.id());
                    install(ports, at, port);
                    changed = true;
                }
                PortCommand::AddQueue { slot, port } => {
                    tracing::debug!(worker, port = %port.name(), id = port.id(), queue = port.queue(), slot, "queue added");
                    install(ports, usize::from(slot), port);
                    changed = true;
                }
                PortCommand::RemovePort(id, reply) => {
                    let port = ports.get_mut(usize::from(id)).and_then(Option::take);
                    tracing::debug!(worker, id, found = port.is_some(), "port removed");
                    if let Some(port) = &port {
                        retiring(usize::from(id), port);
                    }
                    changed |= port.is_some();
                    // The caller may have given up waiting; then the port is dropped here.
                    let _ = reply.send(port);
                }
                PortCommand::Sync(reply) => {
                    let _ = reply.send(());
                }
            }
        }
        if handled > 0 {
            // A command sent after the drain above rings again, so none sleeps unnoticed.
            self.wake.clear();
        }
        changed
    }
}

/// Puts `port` in slot `at`, growing the table when needed (only on a command).
pub(super) fn install(ports: &mut Vec<Option<Port>>, at: usize, port: Port) {
    if ports.len() <= at {
        ports.resize_with(at + 1, || None);
    }
    ports[at] = Some(port);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_commands_wake_the_worker_and_are_answered_in_order() {
        let (tx, rx) = port_commands(4).unwrap();
        let mut ports: Vec<Option<Port>> = Vec::new();
        let (removed_tx, removed_rx) = crossbeam_channel::bounded(1);
        let (sync_tx, sync_rx) = crossbeam_channel::bounded(1);
        tx.send(
            PortCommand::RemovePort(7, removed_tx),
            Duration::from_millis(10),
        )
        .unwrap();
        tx.send(PortCommand::Sync(sync_tx), Duration::from_millis(10))
            .unwrap();
        let mut pfd = libc::pollfd {
            fd: rx.wake_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 0) },
            1,
            "a command makes the eventfd readable"
        );
        assert!(
            !rx.apply("test", &mut ports, |_, _| {}),
            "removing an empty slot changes nothing"
        );
        assert!(
            removed_rx.try_recv().unwrap().is_none(),
            "an empty slot gives back no port"
        );
        assert!(sync_rx.try_recv().is_ok(), "the barrier is answered");
        // SAFETY: as above.
        assert_eq!(
            unsafe { libc::poll(&mut pfd, 1, 0) },
            0,
            "the eventfd is reset after the drain"
        );
    }

    #[test]
    fn commands_to_a_stopped_worker_fail_and_a_full_queue_times_out() {
        let (tx, rx) = port_commands(1).unwrap();
        let (sync_tx, _sync_rx) = crossbeam_channel::bounded(1);
        tx.send(PortCommand::Sync(sync_tx), Duration::from_millis(10))
            .unwrap();
        assert!(matches!(
            tx.sync(Duration::from_millis(20)),
            Err(PortCommandError::Timeout(_))
        ));
        drop(rx);
        assert!(matches!(
            tx.sync(Duration::from_millis(20)),
            Err(PortCommandError::WorkerGone)
        ));
    }
}
