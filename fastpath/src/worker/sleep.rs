//! How an idle worker sleeps: in epoll(7), whose cost does not grow with the ports
//! registered, instead of poll(2) over all of them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::port::Port;

/// Where a sleeping worker waits: one epoll set with every port's socket and the worker's
/// eventfds, rebuilt when the ports change. epoll_wait's cost follows the ready sockets,
/// not the registered ones (poll(2) scans its whole array on every call).
pub(super) struct Sleeper {
    epoll: Option<OwnedFd>,
    events: Vec<libc::epoll_event>,
}

/// epoll data of the worker's own eventfds; port sockets carry their slot.
const EVENTFD_TOKEN: u64 = u64::MAX;

impl Sleeper {
    pub(super) fn new(ports: &[Option<Port>], extra: &[RawFd]) -> Sleeper {
        // SAFETY: epoll_create1 returns a new descriptor or -1, which we check.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            tracing::warn!(error = %std::io::Error::last_os_error(), "epoll_create1 failed; idle workers sleep blind");
            return Sleeper {
                epoll: None,
                events: Vec::new(),
            };
        }
        // SAFETY: a fresh descriptor nobody else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let sockets = ports
            .iter()
            .enumerate()
            .filter_map(|(slot, p)| p.as_ref().map(|p| (p.raw_fd(), slot as u64)));
        let wakers = extra.iter().map(|fd| (*fd, EVENTFD_TOKEN));
        let mut registered = 0;
        for (fd, token) in sockets.chain(wakers) {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: token,
            };
            // SAFETY: valid epoll descriptor, a descriptor we hold open, a valid event.
            if unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) }
                == 0
            {
                registered += 1;
            } else {
                tracing::warn!(fd, error = %std::io::Error::last_os_error(), "cannot add to the worker's epoll set");
            }
        }
        let events = vec![libc::epoll_event { events: 0, u64: 0 }; registered.clamp(1, 256)];
        Sleeper {
            epoll: Some(epoll),
            events,
        }
    }

    /// Sleeps until a socket has frames, an eventfd fires, or `timeout` passes; calls `ready`
    /// with the slot of every port that has frames.
    pub(super) fn wait(&mut self, timeout: Duration, mut ready: impl FnMut(usize)) {
        let Some(epoll) = &self.epoll else {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
            return;
        };
        // SAFETY: events is a valid writable array of its length.
        let n = unsafe {
            libc::epoll_wait(
                epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout.as_millis() as i32,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                // Never spin hot on a persistent error: fall back to a plain sleep.
                tracing::debug!(error = %e, "epoll_wait failed");
                std::thread::sleep(timeout);
            }
            return;
        }
        for event in &self.events[..n as usize] {
            let token = event.u64;
            if token != EVENTFD_TOKEN {
                ready(token as usize);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::worker::port_commands;
    use crate::worker::PortCommand;

    #[test]
    fn an_idle_sleeper_returns_after_its_timeout_and_an_eventfd_wakes_it_without_a_port() {
        let (tx, rx) = port_commands(1).unwrap();
        let mut sleeper = Sleeper::new(&[], &[rx.wake_fd()]);
        let mut woken = Vec::new();
        sleeper.wait(Duration::from_millis(1), |slot| woken.push(slot));
        assert!(woken.is_empty());
        let (sync_tx, _sync_rx) = crossbeam_channel::bounded(1);
        tx.send(PortCommand::Sync(sync_tx), Duration::from_millis(10))
            .unwrap();
        let started = Instant::now();
        sleeper.wait(Duration::from_secs(5), |slot| woken.push(slot));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the eventfd ended the sleep"
        );
        assert!(woken.is_empty(), "an eventfd is not a port");
    }
}
