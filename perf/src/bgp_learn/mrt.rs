//! The route table GoBGP is loaded with (an MRT file) and the two daemons' configurations.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::{
    BoxError, BIRD, BIRD_AS, GOBGP_AS, GOBGP_TO_BIRD, GOBGP_TO_OURS, MRT_REPEAT, OURS, OUR_AS,
};

/// The i-th /24 from 20.0.0.0: 1M of them span 20.0.0.0 to 35.255.255.0.
fn nth_prefix(i: u32) -> [u8; 3] {
    let net = (20u32 << 24).wrapping_add(i << 8);
    let b = net.to_be_bytes();
    [b[0], b[1], b[2]]
}

/// Writes an MRT TABLE_DUMP_V2 file (RFC 6396 section 4.3): one PEER_INDEX_TABLE, then one
/// RIB_IPV4_UNICAST record per prefix with ORIGIN IGP, an empty AS_PATH and NEXT_HOP 0.0.0.0.
///
/// The first [`MRT_REPEAT`] prefixes are written again at the end: Debian's `gobgp` 3.10
/// `mrt inject` exits before its last ~1,000 paths reach the daemon (measured: 8,589 to
/// 9,236 of 10,000 arrived), so the tail it drops is a repeat of paths already injected.
pub fn write_mrt(path: &Path, prefixes: u32) -> Result<(), BoxError> {
    const TABLE_DUMP_V2: u16 = 13;
    const PEER_INDEX_TABLE: u16 = 1;
    const RIB_IPV4_UNICAST: u16 = 2;
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    let mut record = |subtype: u16, body: &[u8]| -> std::io::Result<()> {
        out.write_all(&0u32.to_be_bytes())?; // timestamp
        out.write_all(&TABLE_DUMP_V2.to_be_bytes())?;
        out.write_all(&subtype.to_be_bytes())?;
        out.write_all(&(body.len() as u32).to_be_bytes())?;
        out.write_all(body)
    };
    // Section 4.3.1: collector id, empty view name, one peer (type 0x02: IPv4, 4-octet AS).
    let mut peers = Vec::new();
    peers.extend_from_slice(&GOBGP_TO_OURS.octets());
    peers.extend_from_slice(&0u16.to_be_bytes());
    peers.extend_from_slice(&1u16.to_be_bytes());
    peers.push(0x02);
    peers.extend_from_slice(&GOBGP_TO_OURS.octets());
    peers.extend_from_slice(&GOBGP_TO_OURS.octets());
    peers.extend_from_slice(&GOBGP_AS.to_be_bytes());
    record(PEER_INDEX_TABLE, &peers)?;
    // Path attributes (RFC 4271 section 4.3): well-known transitive flags 0x40.
    let mut attrs = vec![0x40, 1, 1, 0]; // ORIGIN IGP
    attrs.extend_from_slice(&[0x40, 2, 0]); // AS_PATH, empty
                                            // NEXT_HOP 0.0.0.0: GoBGP then announces each peer its own local address (an explicit
                                            // one would be sent unchanged, off BIRD's subnet, and BIRD would drop the routes).
    attrs.extend_from_slice(&[0x40, 3, 4, 0, 0, 0, 0]);
    let mut body = Vec::with_capacity(64);
    let repeat = prefixes.min(MRT_REPEAT);
    for (sequence, i) in (0..prefixes).chain(0..repeat).enumerate() {
        body.clear();
        body.extend_from_slice(&(sequence as u32).to_be_bytes());
        body.push(24);
        body.extend_from_slice(&nth_prefix(i));
        body.extend_from_slice(&1u16.to_be_bytes()); // entry count
        body.extend_from_slice(&0u16.to_be_bytes()); // peer index
        body.extend_from_slice(&0u32.to_be_bytes()); // originated time
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        record(RIB_IPV4_UNICAST, &body)?;
    }
    out.flush()?;
    Ok(())
}

pub(super) fn gobgp_config(path: &Path) -> Result<(), BoxError> {
    let mut conf = format!(
        "[global.config]\n  as = {GOBGP_AS}\n  router-id = \"{GOBGP_TO_OURS}\"\n\
         [global.apply-policy.config]\n  default-import-policy = \"accept-route\"\n  \
         default-export-policy = \"accept-route\"\n"
    );
    for (peer, asn, local) in [
        (OURS, OUR_AS, GOBGP_TO_OURS),
        (BIRD, BIRD_AS, GOBGP_TO_BIRD),
    ] {
        conf += &format!(
            "[[neighbors]]\n  [neighbors.config]\n    neighbor-address = \"{peer}\"\n    \
             peer-as = {asn}\n  [neighbors.transport.config]\n    local-address = \"{local}\"\n    \
             passive-mode = true\n  [neighbors.timers.config]\n    hold-time = 90\n  \
             [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      \
             afi-safi-name = \"ipv4-unicast\"\n"
        );
    }
    std::fs::write(path, conf)?;
    Ok(())
}

pub(super) fn bird_config(path: &Path, log: &Path) -> Result<(), BoxError> {
    let conf = format!(
        "log \"{}\" {{ warning, error, fatal }};
router id {BIRD};
protocol device {{ }}
protocol bgp gobgp {{
    local {BIRD} as {BIRD_AS};
    neighbor {GOBGP_TO_BIRD} as {GOBGP_AS};
    connect delay time 0;
    ipv4 {{ import all; export none; }};
}}
",
        log.display()
    );
    std::fs::write(path, conf)?;
    Ok(())
}
