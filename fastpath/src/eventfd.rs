//! An eventfd(2) counter used as a doorbell: one thread rings it after queueing work, the
//! worker it wakes (asleep in epoll on [`EventFd::raw_fd`]) clears it after draining the queue.
//!
//! Ring after queueing and clear after draining: a ring that races with the drain leaves the
//! descriptor readable, so no queued work sleeps unnoticed.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// A nonblocking, close-on-exec eventfd.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd returns a new descriptor or -1, which we check.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a freshly created descriptor that nothing else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Makes the descriptor readable (wakes whoever waits on it). Cannot block: the counter
    /// would have to reach 2^64 - 1 first.
    pub fn ring(&self) {
        let one = 1u64;
        // SAFETY: writing 8 bytes from a u64 to a valid eventfd.
        unsafe {
            libc::write(
                self.0.as_raw_fd(),
                &one as *const u64 as *const libc::c_void,
                8,
            )
        };
    }

    /// Resets the counter so that the descriptor is no longer readable (a no-op when it was
    /// not rung: the descriptor is nonblocking).
    pub fn clear(&self) {
        let mut v = 0u64;
        // SAFETY: reading 8 bytes into a u64 from a valid nonblocking eventfd.
        unsafe {
            libc::read(
                self.0.as_raw_fd(),
                &mut v as *mut u64 as *mut libc::c_void,
                8,
            )
        };
    }

    /// The descriptor, for an epoll or poll set.
    pub fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: &EventFd) -> bool {
        let mut pfd = libc::pollfd {
            fd: fd.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
    }

    #[test]
    fn ringing_makes_it_readable_until_cleared_and_clearing_twice_is_harmless() {
        let fd = EventFd::new().unwrap();
        assert!(!readable(&fd));
        fd.ring();
        fd.ring();
        assert!(readable(&fd));
        fd.clear();
        assert!(!readable(&fd), "one clear takes every ring");
        fd.clear();
        assert!(!readable(&fd));
    }
}
