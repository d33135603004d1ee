//! The BGP-4 codec against hand-derived and captured encodings, every malformation RFC 4271
//! section 6 and RFC 7606 name, a deterministic fuzz loop, and live BIRD 2 and GoBGP peers.

// `repeat_n` is newer than the workspace's rust-version (1.80).
#![allow(unknown_lints, clippy::manual_repeat_n)]

use std::net::Ipv4Addr;

use bgp::packet::capability::code as cap_code;
use bgp::packet::consts::{attribute_flags as flags, attribute_type_code as type_code};
use bgp::packet::consts::{
    cease, error_code, message_header_error as hdr, open_message_error as open_err,
    update_message_error as upd,
};
use bgp::packet::*;

mod encodings;
mod fuzz;
mod live_peers;
mod malformed;
mod round_trip;
mod updates;

const AS4: DecodeContext = DecodeContext {
    four_octet_as: true,
};
const AS2: DecodeContext = DecodeContext {
    four_octet_as: false,
};
const ENC4: EncodeContext = EncodeContext {
    four_octet_as: true,
};
const ENC2: EncodeContext = EncodeContext {
    four_octet_as: false,
};

fn prefix(s: &str) -> Ipv4Prefix {
    s.parse().unwrap()
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// A whole message: marker, length, type, body.
fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An UPDATE from its three raw fields.
fn update_msg(withdrawn: &[u8], attributes: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = (withdrawn.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
    body.extend_from_slice(attributes);
    body.extend_from_slice(nlri);
    message(2, &body)
}

fn attr(attr_flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![attr_flags, code, value.len() as u8];
    a.extend_from_slice(value);
    a
}

fn origin_igp() -> Vec<u8> {
    attr(0x40, 1, &[0])
}
fn as_path4(asns: &[u32]) -> Vec<u8> {
    let mut v = vec![2, asns.len() as u8];
    asns.iter()
        .for_each(|a| v.extend_from_slice(&a.to_be_bytes()));
    attr(0x40, 2, &v)
}
fn next_hop(a: [u8; 4]) -> Vec<u8> {
    attr(0x40, 3, &a)
}
/// ORIGIN, AS_PATH and NEXT_HOP, all valid, for a 4-octet session.
fn mandatory() -> Vec<u8> {
    [origin_igp(), as_path4(&[65001]), next_hop([192, 0, 2, 1])].concat()
}
const NLRI_10_1: [u8; 4] = [24, 10, 1, 0];

fn decode(buf: &[u8], cx: &DecodeContext) -> Message {
    let (m, used) = Message::decode(buf, cx).unwrap_or_else(|e| panic!("decode failed: {e}"));
    assert_eq!(used, buf.len(), "the whole message is consumed");
    m
}

fn full_attributes() -> PathAttributes {
    PathAttributes {
        origin: Origin::Egp,
        as_path: AsPath {
            segments: vec![
                AsPathSegment {
                    kind: AsPathSegmentType::AsSequence,
                    asns: vec![65001, 4200000001, 7],
                },
                AsPathSegment {
                    kind: AsPathSegmentType::AsSet,
                    asns: vec![100, 4200000002],
                },
            ],
        },
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
        med: Some(50),
        local_pref: Some(200),
        atomic_aggregate: true,
        aggregator: Some(Aggregator {
            asn: 4200000003,
            address: Ipv4Addr::new(192, 0, 2, 9),
        }),
        communities: vec![(65002 << 16) | 100, 0xffff_ff01],
        originator_id: Some(Ipv4Addr::new(10, 0, 0, 1)),
        cluster_list: vec![Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)],
        mp_reach: None,
        mp_unreach: None,
        unknown: vec![RawAttribute {
            flags: flags::OPTIONAL | flags::TRANSITIVE | flags::PARTIAL,
            type_code: 99,
            value: vec![1, 2, 3],
        }],
    }
}

fn sample_messages() -> Vec<Message> {
    let caps = vec![
        Capability::Multiprotocol {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST,
        },
        Capability::RouteRefresh,
        Capability::GracefulRestart {
            restart_state: true,
            restart_time: 120,
            families: vec![GracefulRestartFamily {
                afi: 1,
                safi: 1,
                forwarding_state: true,
            }],
        },
        Capability::Unknown {
            code: 70,
            data: vec![],
        },
        Capability::Unknown {
            code: 73,
            data: b"node-1".to_vec(),
        },
    ];
    let mp_attrs = PathAttributes {
        as_path: AsPath::from_sequence(vec![65001]),
        mp_reach: Some(MpReach {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST,
            next_hop: vec![192, 0, 2, 7],
            nlri: vec![prefix("10.7.0.0/16"), prefix("0.0.0.0/0")],
            raw_nlri: vec![],
        }),
        mp_unreach: Some(MpUnreach {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST,
            withdrawn: vec![prefix("10.8.0.0/16")],
            raw_withdrawn: vec![],
        }),
        ..Default::default()
    };
    vec![
        Message::Keepalive,
        Message::Open(Open::new(
            4200000001,
            90,
            Ipv4Addr::new(10, 255, 0, 1),
            caps,
        )),
        Message::Open(Open {
            version: 4,
            my_as: 65001,
            hold_time: 0,
            bgp_identifier: Ipv4Addr::new(1, 1, 1, 1),
            capabilities: vec![],
        }),
        Message::Update(Update::end_of_rib()),
        Message::Update(Update::end_of_rib_for(2, 1)),
        Message::Update(Update {
            withdrawn: vec![prefix("10.9.0.0/16"), prefix("10.9.128.1/32")],
            attributes: Some(full_attributes()),
            nlri: vec![
                prefix("10.1.0.0/24"),
                prefix("10.2.0.0/15"),
                prefix("10.3.3.3/32"),
            ],
            ..Default::default()
        }),
        Message::Update(Update {
            attributes: Some(mp_attrs),
            ..Default::default()
        }),
        Message::Notification(Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN)),
        Message::Notification(Notification::new(3, 5, vec![0x40, 1, 2, 0, 0])),
        Message::Notification(Notification::hold_timer_expired()),
        Message::RouteRefresh(RouteRefresh {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST,
        }),
    ]
}
