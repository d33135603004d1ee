//! The modes the dataplane runs in, as NIC profiles (`hw-profiles/*.toml`) and node.toml name
//! them: where the XDP program is attached, and how a worker waits for frames.

use std::fmt;
use std::str::FromStr;

/// How the XDP program is attached to an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver, before an skb exists (native XDP, XDP_FLAGS_DRV_MODE): the fast one,
    /// and the one zero-copy AF_XDP needs.
    Native,
    /// In the generic network stack, after the skb is built (XDP_FLAGS_SKB_MODE): works on
    /// every interface, slower.
    Generic,
}

/// How a worker waits for frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxMode {
    /// Busy-poll the rings on a pinned core: lowest latency, one core per worker at 100%.
    Poll,
    /// Sleep in epoll(7) as soon as a loop found nothing (until the NIC raises an interrupt),
    /// so several workers (or a lab of several nodes) can share cores.
    Interrupt,
    /// Keep polling for `worker::ADAPTIVE_SPIN` after the last frame, then sleep like
    /// `Interrupt`: near poll-mode latency under load, no core burnt when idle.
    Adaptive,
}

// The error says only what was expected: the callers name the field or flag and its value.

impl FromStr for XdpMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "native" => Ok(XdpMode::Native),
            "generic" => Ok(XdpMode::Generic),
            _ => Err("expected \"native\" or \"generic\"".into()),
        }
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            XdpMode::Native => "native",
            XdpMode::Generic => "generic",
        })
    }
}

impl FromStr for RxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "poll" => Ok(RxMode::Poll),
            "interrupt" => Ok(RxMode::Interrupt),
            "adaptive" => Ok(RxMode::Adaptive),
            _ => Err("expected \"poll\", \"interrupt\" or \"adaptive\"".into()),
        }
    }
}

impl fmt::Display for RxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RxMode::Poll => "poll",
            RxMode::Interrupt => "interrupt",
            RxMode::Adaptive => "adaptive",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rx_mode_parses_its_three_names_and_rejects_others() {
        assert_eq!("poll".parse::<RxMode>(), Ok(RxMode::Poll));
        assert_eq!("interrupt".parse::<RxMode>(), Ok(RxMode::Interrupt));
        assert_eq!("adaptive".parse::<RxMode>(), Ok(RxMode::Adaptive));
        assert!("busy".parse::<RxMode>().is_err());
    }

    #[test]
    fn modes_print_the_names_they_parse_from() {
        for mode in [RxMode::Poll, RxMode::Interrupt, RxMode::Adaptive] {
            assert_eq!(mode.to_string().parse::<RxMode>(), Ok(mode));
        }
        for mode in [XdpMode::Native, XdpMode::Generic] {
            assert_eq!(mode.to_string().parse::<XdpMode>(), Ok(mode));
        }
        assert_eq!(XdpMode::Generic.to_string(), "generic");
        assert_eq!(RxMode::Adaptive.to_string(), "adaptive");
    }

    #[test]
    fn a_bad_name_is_refused_with_the_names_a_profile_may_use() {
        assert_eq!(
            "busy".parse::<RxMode>(),
            Err("expected \"poll\", \"interrupt\" or \"adaptive\"".to_string())
        );
        assert_eq!(
            "Native".parse::<XdpMode>(),
            Err("expected \"native\" or \"generic\"".to_string())
        );
    }
}
