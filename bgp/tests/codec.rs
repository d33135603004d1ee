//! The BGP-4 codec against hand-derived and captured encodings, every malformation RFC 4271
//! section 6 and RFC 7606 name, a deterministic fuzz loop, and live BIRD 2 and GoBGP peers.

// `repeat_n` is newer than the workspace's rust-version (1.80).
#![allow(unknown_lints, clippy::manual_repeat_n)]

use std::net::Ipv4Addr;

use bgp::packet::attribute::{flags, type_code};
use bgp::packet::capability::code as cap_code;
use bgp::packet::notification::{
    cease, error_code, message_header_error as hdr, open_message_error as open_err,
    update_message_error as upd,
};
use bgp::packet::*;

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

#[test]
fn every_message_round_trips_on_4_octet_and_2_octet_sessions() {
    for (enc, dec) in [(ENC4, AS4), (ENC2, AS2)] {
        for m in sample_messages() {
            let bytes = m.encode(&enc);
            assert!(bytes.len() <= 4096);
            assert_eq!(decode(&bytes, &dec), m, "round trip ({enc:?}) of {m:?}");
        }
    }
}

#[test]
fn every_capability_round_trips_in_an_open() {
    let caps = [
        Capability::Multiprotocol {
            afi: AFI_IPV4,
            safi: SAFI_UNICAST,
        },
        Capability::Multiprotocol {
            afi: AFI_IPV6,
            safi: SAFI_MULTICAST,
        },
        Capability::RouteRefresh,
        Capability::FourOctetAs(4_294_967_295),
        Capability::GracefulRestart {
            restart_state: false,
            restart_time: 4095,
            families: vec![],
        },
        Capability::GracefulRestart {
            restart_state: true,
            restart_time: 1,
            families: vec![
                GracefulRestartFamily {
                    afi: 1,
                    safi: 1,
                    forwarding_state: false,
                },
                GracefulRestartFamily {
                    afi: 2,
                    safi: 1,
                    forwarding_state: true,
                },
            ],
        },
        Capability::Unknown {
            code: 128,
            data: vec![],
        },
        // The largest that fits the 255 octets of Optional Parameters: parameter header (2),
        // capability header (2), value (251).
        Capability::Unknown {
            code: 200,
            data: vec![0xab; 251],
        },
    ];
    for cap in caps {
        let open = Open {
            version: 4,
            my_as: 65000,
            hold_time: 3,
            bgp_identifier: Ipv4Addr::new(10, 0, 0, 1),
            capabilities: vec![cap.clone()],
        };
        let bytes = Message::Open(open.clone()).encode(&ENC4);
        assert_eq!(decode(&bytes, &AS4), Message::Open(open), "{cap:?}");
    }
    // One octet more cannot be sent: it is left out rather than corrupting the OPEN.
    let too_long = Open {
        version: 4,
        my_as: 65000,
        hold_time: 3,
        bgp_identifier: Ipv4Addr::new(10, 0, 0, 1),
        capabilities: vec![
            Capability::Unknown {
                code: 200,
                data: vec![0; 252],
            },
            Capability::RouteRefresh,
        ],
    };
    let Message::Open(sent) = decode(&Message::Open(too_long).encode(&ENC4), &AS4) else {
        panic!()
    };
    assert_eq!(sent.capabilities, vec![Capability::RouteRefresh]);
}

#[test]
fn open_for_a_4_octet_as_sends_as_trans_and_the_capability() {
    let open = Open::new(4200000001, 90, Ipv4Addr::new(10, 0, 0, 1), vec![]);
    assert_eq!(open.my_as, AS_TRANS);
    assert_eq!(open.four_octet_as(), Some(4200000001));
    assert_eq!(open.asn(), 4200000001);
    let small = Open::new(65001, 90, Ipv4Addr::new(10, 0, 0, 1), vec![]);
    assert_eq!((small.my_as, small.asn()), (65001, 65001));
}

/// Encodings derived by hand from the RFC 4271 section 4 layouts.
#[test]
fn hand_derived_encodings_decode() {
    // KEEPALIVE: the header alone, length 19, type 4.
    let keepalive = hex("ffffffffffffffffffffffffffffffff 0013 04");
    assert_eq!(decode(&keepalive, &AS4), Message::Keepalive);
    assert_eq!(Message::Keepalive.encode(&ENC4), keepalive);

    // OPEN: version 4, AS 65000, hold 180, id 192.168.0.1, one parameter (type 2, length 6)
    // holding the 4-octet AS capability (code 65, length 4, AS 65000).
    let open =
        hex("ffffffffffffffffffffffffffffffff 0025 01 04 fde8 00b4 c0a80001 08 0206 4104 0000fde8");
    let expected = Open {
        version: 4,
        my_as: 65000,
        hold_time: 180,
        bgp_identifier: Ipv4Addr::new(192, 168, 0, 1),
        capabilities: vec![Capability::FourOctetAs(65000)],
    };
    assert_eq!(decode(&open, &AS4), Message::Open(expected.clone()));
    assert_eq!(Message::Open(expected).encode(&ENC4), open);

    // UPDATE on a 2-octet session: withdraw 10.2.0.0/16; ORIGIN IGP, AS_PATH
    // SEQUENCE(65001 65002), NEXT_HOP 192.0.2.1, MED 100; announce 10.1.0.0/24.
    let update = hex("ffffffffffffffffffffffffffffffff 0039 02
         0003 100a02
         001b 40010100 4002060202fde9fdea 400304c0000201 80040400000064
         180a0100");
    let Message::Update(u) = decode(&update, &AS2) else {
        panic!("not an UPDATE")
    };
    assert_eq!(u.withdrawn, vec![prefix("10.2.0.0/16")]);
    assert_eq!(u.nlri, vec![prefix("10.1.0.0/24")]);
    let a = u.attributes.as_ref().unwrap();
    assert_eq!(a.origin, Origin::Igp);
    assert_eq!(a.as_path, AsPath::from_sequence(vec![65001, 65002]));
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(a.med, Some(100));
    assert!(!u.treat_as_withdraw && u.malformation.is_none());
    assert_eq!(Message::Update(u).encode(&ENC2), update);

    // NOTIFICATION Cease / Administrative Shutdown, no data.
    let notification = hex("ffffffffffffffffffffffffffffffff 0015 03 0602");
    assert_eq!(
        decode(&notification, &AS4),
        Message::Notification(Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN))
    );

    // ROUTE-REFRESH for IPv4 unicast (RFC 2918 section 3).
    let rr = hex("ffffffffffffffffffffffffffffffff 0017 05 0001 00 01");
    assert_eq!(
        decode(&rr, &AS4),
        Message::RouteRefresh(RouteRefresh { afi: 1, safi: 1 })
    );
}

/// Streams captured from BIRD 2.0.12 (router id 10.255.0.1, AS 4200000001, two static
/// routes exported with MED 50 and community 65002:100) by `live_bird` below, on a 4-octet
/// and a 2-octet session. They decode into what BIRD was configured to send, and each
/// message re-encodes into exactly BIRD's bytes.
#[test]
fn captured_bird2_streams_decode_and_reencode_identically() {
    const OPEN: &str = "ffffffffffffffffffffffffffffffff003501045ba0001e0aff00011802160104000100010200400200784104fa56ea0146004700";
    const KEEPALIVE: &str = "ffffffffffffffffffffffffffffffff001304";
    const UPDATE_AS4: &str = "ffffffffffffffffffffffffffffffff00420200000022400101004002060201fa56ea014003047f00000280040400000032c00804fdea0064190a630200180a6301";
    const END_OF_RIB: &str = "ffffffffffffffffffffffffffffffff00170200000000";
    const UPDATE_AS2: &str = "ffffffffffffffffffffffffffffffff004902000000294001010040020402015ba04003047f00000280040400000032c00804fdea0064c011060201fa56ea01190a630200180a6301";

    let expected_open = Open {
        version: 4,
        my_as: AS_TRANS,
        hold_time: 30,
        bgp_identifier: Ipv4Addr::new(10, 255, 0, 1),
        capabilities: vec![
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::RouteRefresh,
            Capability::GracefulRestart {
                restart_state: false,
                restart_time: 120,
                families: vec![],
            },
            Capability::FourOctetAs(4200000001),
            Capability::Unknown {
                code: 70,
                data: vec![],
            }, // enhanced route refresh
            Capability::Unknown {
                code: 71,
                data: vec![],
            }, // long-lived graceful restart
        ],
    };
    let expected_update = Update {
        attributes: Some(PathAttributes {
            origin: Origin::Igp,
            as_path: AsPath::from_sequence(vec![4200000001]),
            next_hop: Some(Ipv4Addr::new(127, 0, 0, 2)),
            med: Some(50),
            communities: vec![(65002 << 16) | 100],
            ..Default::default()
        }),
        nlri: vec![prefix("10.99.2.0/25"), prefix("10.99.1.0/24")],
        ..Default::default()
    };
    let stream_as4 = hex(&[OPEN, KEEPALIVE, UPDATE_AS4, END_OF_RIB].concat());
    let (messages, used, error) = split_messages(&stream_as4, &AS4);
    assert_eq!((used, error), (stream_as4.len(), None));
    assert_eq!(
        messages,
        vec![
            Message::Open(expected_open.clone()),
            Message::Keepalive,
            Message::Update(expected_update.clone()),
            Message::Update(Update::end_of_rib()),
        ]
    );
    for (m, bytes) in messages
        .iter()
        .zip([OPEN, KEEPALIVE, UPDATE_AS4, END_OF_RIB])
    {
        assert_eq!(m.encode(&ENC4), hex(bytes), "{m:?}");
    }

    // The 2-octet session: AS_PATH holds AS_TRANS, AS4_PATH the real AS.
    let m = decode(&hex(UPDATE_AS2), &AS2);
    assert_eq!(m, Message::Update(expected_update));
    assert_eq!(m.encode(&ENC2), hex(UPDATE_AS2));
}

/// A stream captured from GoBGP 3.10 (router id 10.255.0.3, AS 4200000002, one route
/// added through its API with MED 40 and community 65002:200) by `live_peers` below.
#[test]
fn captured_gobgp_stream_decodes_and_reencodes_identically() {
    const OPEN: &str = "ffffffffffffffffffffffffffffffff003b01045ba0001e0aff00031e021c0200490402766d000104000100014104fa56ea020506000100010002";
    const KEEPALIVE: &str = "ffffffffffffffffffffffffffffffff001304";
    const UPDATE: &str = "ffffffffffffffffffffffffffffffff003d0200000022400101024002060201fa56ea024003047f00000380040400000028c00804fdea00c8180a6201";
    let stream = hex(&[OPEN, KEEPALIVE, UPDATE].concat());
    let (messages, used, error) = split_messages(&stream, &AS4);
    assert_eq!((used, error), (stream.len(), None));
    let expected_open = Open {
        version: 4,
        my_as: AS_TRANS,
        hold_time: 30,
        bgp_identifier: Ipv4Addr::new(10, 255, 0, 3),
        capabilities: vec![
            Capability::RouteRefresh,
            Capability::Unknown {
                code: 73,
                data: vec![2, b'v', b'm', 0],
            }, // FQDN
            Capability::Multiprotocol { afi: 1, safi: 1 },
            Capability::FourOctetAs(4200000002),
            Capability::Unknown {
                code: 5,
                data: vec![0, 1, 0, 1, 0, 2],
            }, // extended next hop
        ],
    };
    let expected_update = Update {
        attributes: Some(PathAttributes {
            origin: Origin::Incomplete,
            as_path: AsPath::from_sequence(vec![4200000002]),
            next_hop: Some(Ipv4Addr::new(127, 0, 0, 3)),
            med: Some(40),
            communities: vec![(65002 << 16) | 200],
            ..Default::default()
        }),
        nlri: vec![prefix("10.98.1.0/24")],
        ..Default::default()
    };
    assert_eq!(
        messages,
        vec![
            Message::Open(expected_open),
            Message::Keepalive,
            Message::Update(expected_update)
        ]
    );
    for (m, bytes) in messages.iter().zip([OPEN, KEEPALIVE, UPDATE]) {
        assert_eq!(m.encode(&ENC4), hex(bytes), "{m:?}");
    }
}

/// RFC 6793 section 4.2: a path with 4-octet AS numbers crosses a 2-octet session as
/// AS_TRANS in AS_PATH plus AS4_PATH, and the receiver puts it back together.
#[test]
fn as4_path_and_as4_aggregator_for_2_octet_sessions() {
    let attrs = full_attributes();
    let update = Update {
        attributes: Some(attrs.clone()),
        nlri: vec![prefix("10.1.0.0/24")],
        ..Default::default()
    };
    let bytes = Message::Update(update.clone()).encode(&ENC2);
    // On the wire: AS_PATH 2-octet with AS_TRANS, AS4_PATH and AS4_AGGREGATOR present.
    let as_path = [
        2u8, 3, 0xfd, 0xe9, 0x5b, 0xa0, 0, 7, 1, 2, 0, 100, 0x5b, 0xa0,
    ];
    assert!(
        bytes.windows(as_path.len()).any(|w| w == as_path),
        "AS_PATH with AS_TRANS"
    );
    assert!(bytes
        .windows(3)
        .any(|w| w == [0xc0, type_code::AS4_PATH, 24]));
    assert!(bytes
        .windows(3)
        .any(|w| w == [0xc0, type_code::AS4_AGGREGATOR, 8]));
    assert_eq!(decode(&bytes, &AS2), Message::Update(update.clone()));

    // A 4-octet speaker ignores AS4_PATH from a 4-octet peer (RFC 6793 section 6).
    let stray_as4 = attr(0xc0, type_code::AS4_PATH, &[2, 1, 0, 0, 0, 9]);
    let bytes = update_msg(&[], &[mandatory(), stray_as4].concat(), &NLRI_10_1);
    let Message::Update(u) = decode(&bytes, &AS4) else {
        panic!()
    };
    assert_eq!(
        u.attributes.unwrap().as_path,
        AsPath::from_sequence(vec![65001])
    );

    // AS4_PATH longer than AS_PATH is ignored (section 4.2.3).
    let as_path2 = attr(0x40, 2, &[2, 1, 0x5b, 0xa0]);
    let as4 = attr(0xc0, type_code::AS4_PATH, &[2, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
    let attrs = [origin_igp(), as_path2, next_hop([192, 0, 2, 1]), as4].concat();
    let Message::Update(u) = decode(&update_msg(&[], &attrs, &NLRI_10_1), &AS2) else {
        panic!()
    };
    assert_eq!(
        u.attributes.unwrap().as_path,
        AsPath::from_sequence(vec![u32::from(AS_TRANS)])
    );

    // Leading 2-octet ASes prepended by an old speaker are kept in front of AS4_PATH.
    let as_path2 = attr(0x40, 2, &[2, 3, 0, 10, 0, 11, 0x5b, 0xa0]);
    let as4 = attr(
        0xc0,
        type_code::AS4_PATH,
        &[2, 2, 0, 0, 0, 11, 0xfa, 0x56, 0xea, 0x01],
    );
    let attrs = [origin_igp(), as_path2, next_hop([192, 0, 2, 1]), as4].concat();
    let Message::Update(u) = decode(&update_msg(&[], &attrs, &NLRI_10_1), &AS2) else {
        panic!()
    };
    assert_eq!(
        u.attributes.unwrap().as_path,
        AsPath::from_sequence(vec![10, 11, 4200000001])
    );
}

#[test]
fn routes_in_mp_reach_and_the_classic_fields_are_both_reported() {
    let Message::Update(u) = sample_messages().swap_remove(6) else {
        panic!()
    };
    assert_eq!(
        u.announced().collect::<Vec<_>>(),
        vec![prefix("10.7.0.0/16"), prefix("0.0.0.0/0")]
    );
    assert_eq!(
        u.withdrawn_routes().collect::<Vec<_>>(),
        vec![prefix("10.8.0.0/16")]
    );
    assert_eq!(u.next_hop(), Some(Ipv4Addr::new(192, 0, 2, 7)));
}

#[test]
fn end_of_rib_markers_are_recognized() {
    assert_eq!(Update::end_of_rib().end_of_rib_family(), Some((1, 1)));
    assert_eq!(
        Update::end_of_rib_for(2, 1).end_of_rib_family(),
        Some((2, 1))
    );
    // The empty UPDATE on the wire: two zero lengths.
    let Message::Update(u) = decode(&update_msg(&[], &[], &[]), &AS4) else {
        panic!()
    };
    assert_eq!(u.end_of_rib_family(), Some((1, 1)));
    let Message::Update(u) = sample_messages().swap_remove(5) else {
        panic!()
    };
    assert_eq!(u.end_of_rib_family(), None);
}

#[test]
fn pack_splits_large_announcements_into_updates_within_4096_octets() {
    let nlri: Vec<Ipv4Prefix> = (0..3000u32)
        .map(|i| Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap())
        .collect();
    let withdrawn: Vec<Ipv4Prefix> = (0..1500u32)
        .map(|i| Ipv4Prefix::new(Ipv4Addr::from(0x0b00_0000 | i), 32).unwrap())
        .collect();
    let attrs = full_attributes();
    let updates = Update::pack(&withdrawn, &attrs, &nlri, &ENC2);
    assert!(
        updates.len() > 3,
        "needs several messages, got {}",
        updates.len()
    );
    let (mut seen_nlri, mut seen_withdrawn) = (Vec::new(), Vec::new());
    for u in updates {
        let bytes = Message::Update(u.clone()).encode(&ENC2);
        assert!(bytes.len() <= 4096, "{} octets", bytes.len());
        assert_eq!(decode(&bytes, &AS2), Message::Update(u.clone()));
        seen_nlri.extend(u.nlri);
        seen_withdrawn.extend(u.withdrawn);
    }
    assert_eq!((seen_nlri, seen_withdrawn), (nlri, withdrawn));
    assert!(Update::pack(&[], &attrs, &[], &ENC4).is_empty());
}

#[test]
fn the_stream_splits_messages_across_reads() {
    let all: Vec<u8> = sample_messages()
        .iter()
        .flat_map(|m| m.encode(&ENC4))
        .collect();
    let mut stream = MessageStream::new();
    let mut got = Vec::new();
    // Feed 7 octets at a time: messages end in the middle of reads.
    for chunk in all.chunks(7) {
        stream.push(chunk);
        while let Some(m) = stream.next_message(&AS4) {
            got.push(m.expect("valid stream"));
        }
    }
    assert_eq!(got, sample_messages());
    assert_eq!(stream.buffered(), 0);

    let (messages, used, error) = split_messages(&all[..all.len() - 1], &AS4);
    assert_eq!(messages.len(), sample_messages().len() - 1);
    assert!(used < all.len() && error.is_none());

    // After garbage the stream reports the error once and stops.
    stream.push(&[0u8; 19]);
    let err = stream.next_message(&AS4).unwrap().unwrap_err();
    assert_eq!(
        (err.code, err.subcode),
        (1, hdr::CONNECTION_NOT_SYNCHRONIZED)
    );
    stream.push(&Message::Keepalive.encode(&ENC4));
    assert!(stream.next_message(&AS4).is_none());
}

#[test]
fn incomplete_input_asks_for_more_bytes() {
    let open = Message::Open(Open::new(65001, 90, Ipv4Addr::new(1, 2, 3, 4), vec![])).encode(&ENC4);
    for cut in 0..open.len() {
        assert_eq!(
            Message::decode(&open[..cut], &AS4),
            Err(DecodeError::Incomplete),
            "cut at {cut}"
        );
    }
    // A marker that is already wrong is not worth waiting for.
    assert!(matches!(
        Message::decode(&[0xff, 0xfe], &AS4),
        Err(DecodeError::Malformed(_))
    ));
}

/// What decoding must make of a malformed message.
#[derive(Debug)]
enum Expect {
    /// `Err(Malformed)` with this NOTIFICATION: code, subcode, data.
    Reset(u8, u8, Vec<u8>),
    /// An UPDATE treated as withdraw (RFC 7606): the malformation it records.
    Withdraw(u8, Vec<u8>),
    /// An UPDATE whose attribute was discarded: the malformation, and the route still
    /// announced.
    Discard(u8),
}

fn malformation_cases() -> Vec<(&'static str, Vec<u8>, DecodeContext, Expect)> {
    use Expect::*;
    let keepalive = Message::Keepalive.encode(&ENC4);
    let open_body = |version: u8, my_as: u16, hold: u16, id: [u8; 4], params: &[u8]| {
        let mut b = vec![version];
        b.extend_from_slice(&my_as.to_be_bytes());
        b.extend_from_slice(&hold.to_be_bytes());
        b.extend_from_slice(&id);
        b.push(params.len() as u8);
        b.extend_from_slice(params);
        message(1, &b)
    };
    let id = [10, 0, 0, 1];
    let with_len = |mut m: Vec<u8>, len: u16| {
        m[16..18].copy_from_slice(&len.to_be_bytes());
        m
    };
    let mut bad_marker = keepalive.clone();
    bad_marker[3] = 0xfe;
    let mut bad_type = keepalive.clone();
    bad_type[18] = 6;
    let ok_update = |attrs: Vec<u8>| update_msg(&[], &attrs, &NLRI_10_1);
    let m = mandatory;
    let origin_bad_flags = attr(0xc0, 1, &[0]);
    let origin_len2 = attr(0x40, 1, &[0, 0]);
    let origin_3 = attr(0x40, 1, &[3]);
    let nh_len3 = attr(0x40, 3, &[1, 2, 3]);
    let nh_zero = next_hop([0, 0, 0, 0]);
    let nh_multicast = next_hop([224, 0, 0, 1]);
    let unknown_wk = attr(0x40, 99, &[1]);
    let med3 = attr(0x80, 4, &[0, 0, 1]);
    let lp5 = attr(0x40, 5, &[0, 0, 0, 0, 1]);
    let comm6 = attr(0xc0, 8, &[0, 0, 0, 0, 0, 1]);
    let orig3 = attr(0x80, 9, &[1, 2, 3]);
    let cl5 = attr(0x80, 10, &[1, 2, 3, 4, 5]);
    let atomic1 = attr(0x40, 6, &[1]);
    let aggr7 = attr(0xc0, 7, &[0, 0, 0, 1, 1, 2, 3]);
    let mp_reach = |nh_len: u8, nlri: &[u8]| {
        let mut v = vec![0, 1, 1, nh_len];
        v.extend(std::iter::repeat(7).take(usize::from(nh_len)));
        v.push(0);
        v.extend_from_slice(nlri);
        attr(0x80, 14, &v)
    };
    let mp_unreach = attr(0x80, 15, &[0, 1, 1]);
    vec![
        // RFC 4271 section 6.1: message header errors.
        (
            "marker not all ones",
            bad_marker,
            AS4,
            Reset(1, hdr::CONNECTION_NOT_SYNCHRONIZED, vec![]),
        ),
        (
            "length below 19",
            with_len(keepalive.clone(), 18),
            AS4,
            Reset(1, hdr::BAD_MESSAGE_LENGTH, vec![0, 18]),
        ),
        (
            "length above 4096",
            with_len(keepalive.clone(), 4097),
            AS4,
            Reset(1, hdr::BAD_MESSAGE_LENGTH, vec![0x10, 0x01]),
        ),
        (
            "unknown type",
            bad_type,
            AS4,
            Reset(1, hdr::BAD_MESSAGE_TYPE, vec![6]),
        ),
        (
            "KEEPALIVE with a body",
            message(4, &[0]),
            AS4,
            Reset(1, hdr::BAD_MESSAGE_LENGTH, vec![0, 20]),
        ),
        (
            "OPEN below 29",
            message(1, &[4; 9]),
            AS4,
            Reset(1, hdr::BAD_MESSAGE_LENGTH, vec![0, 28]),
        ),
        (
            "UPDATE below 23",
            message(2, &[0; 3]),
            AS4,
            Reset(1, hdr::BAD_MESSAGE_LENGTH, vec![0, 22]),
        ),
        (
            "NOTIFICATION below 21",
            message(3, &[6]),
            AS4,
            Reset(1, hdr::BAD_MESSAGE_LENGTH, vec![0, 20]),
        ),
        (
            "ROUTE-REFRESH not 23",
            message(5, &[0, 1, 0, 1, 0]),
            AS4,
            Reset(1, hdr::BAD_MESSAGE_LENGTH, vec![0, 24]),
        ),
        // RFC 4271 section 6.2: OPEN message errors.
        (
            "version 3",
            open_body(3, 65001, 90, id, &[]),
            AS4,
            Reset(2, open_err::UNSUPPORTED_VERSION_NUMBER, vec![0, 4]),
        ),
        (
            "peer AS 0 (RFC 7607)",
            open_body(4, 0, 90, id, &[]),
            AS4,
            Reset(2, open_err::BAD_PEER_AS, vec![]),
        ),
        (
            "4-octet AS 0 (RFC 7607)",
            open_body(4, 65001, 90, id, &[2, 6, 65, 4, 0, 0, 0, 0]),
            AS4,
            Reset(2, open_err::BAD_PEER_AS, vec![]),
        ),
        (
            "hold time 1",
            open_body(4, 65001, 1, id, &[]),
            AS4,
            Reset(2, open_err::UNACCEPTABLE_HOLD_TIME, vec![]),
        ),
        (
            "hold time 2",
            open_body(4, 65001, 2, id, &[]),
            AS4,
            Reset(2, open_err::UNACCEPTABLE_HOLD_TIME, vec![]),
        ),
        (
            "identifier 0.0.0.0",
            open_body(4, 65001, 90, [0; 4], &[]),
            AS4,
            Reset(2, open_err::BAD_BGP_IDENTIFIER, vec![]),
        ),
        (
            "optional parameter type 1",
            open_body(4, 65001, 90, id, &[1, 1, 0]),
            AS4,
            Reset(2, open_err::UNSUPPORTED_OPTIONAL_PARAMETER, vec![]),
        ),
        (
            "parameter overruns",
            open_body(4, 65001, 90, id, &[2, 9, 2, 0]),
            AS4,
            Reset(2, open_err::UNSPECIFIC, vec![]),
        ),
        (
            "capability overruns",
            open_body(4, 65001, 90, id, &[2, 2, 65, 4]),
            AS4,
            Reset(2, open_err::UNSPECIFIC, vec![]),
        ),
        (
            "4-octet AS capability of 3 octets",
            open_body(4, 65001, 90, id, &[2, 5, 65, 3, 0, 0, 1]),
            AS4,
            Reset(2, open_err::UNSPECIFIC, vec![]),
        ),
        // RFC 4271 section 6.3 errors that still reset the session under RFC 7606.
        (
            "withdrawn length overruns",
            message(2, &[0, 9, 0, 0]),
            AS4,
            Reset(3, upd::MALFORMED_ATTRIBUTE_LIST, vec![]),
        ),
        (
            "attribute length overruns",
            message(2, &[0, 0, 0, 9, 0x40]),
            AS4,
            Reset(3, upd::MALFORMED_ATTRIBUTE_LIST, vec![]),
        ),
        (
            "NLRI prefix of 33 bits",
            update_msg(&[], &m(), &[33, 1, 2, 3, 4, 5]),
            AS4,
            Reset(3, upd::INVALID_NETWORK_FIELD, vec![]),
        ),
        (
            "NLRI prefix cut short",
            update_msg(&[], &m(), &[24, 10, 1]),
            AS4,
            Reset(3, upd::INVALID_NETWORK_FIELD, vec![]),
        ),
        (
            "withdrawn prefix of 40 bits",
            update_msg(&[40, 1, 2, 3, 4, 5], &[], &[]),
            AS4,
            Reset(3, upd::INVALID_NETWORK_FIELD, vec![]),
        ),
        (
            "unrecognized well-known attribute",
            ok_update([m(), unknown_wk.clone()].concat()),
            AS4,
            Reset(3, upd::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE, unknown_wk),
        ),
        (
            "MP_REACH_NLRI twice",
            update_msg(&[], &[mp_reach(4, &[]), mp_reach(4, &[])].concat(), &[]),
            AS4,
            Reset(3, upd::MALFORMED_ATTRIBUTE_LIST, vec![]),
        ),
        (
            "MP_UNREACH_NLRI twice",
            update_msg(&[], &[mp_unreach.clone(), mp_unreach.clone()].concat(), &[]),
            AS4,
            Reset(3, upd::MALFORMED_ATTRIBUTE_LIST, vec![]),
        ),
        (
            "MP_REACH_NLRI next hop of 16 octets for IPv4",
            update_msg(&[], &[mp_reach(16, &[])].concat(), &[]),
            AS4,
            Reset(3, upd::OPTIONAL_ATTRIBUTE_ERROR, mp_reach(16, &[])),
        ),
        (
            "MP_REACH_NLRI with a bad prefix",
            update_msg(&[], &[mp_reach(4, &[33, 1])].concat(), &[]),
            AS4,
            Reset(3, upd::OPTIONAL_ATTRIBUTE_ERROR, mp_reach(4, &[33, 1])),
        ),
        (
            "MP_UNREACH_NLRI cut short",
            update_msg(&[], &attr(0x80, 15, &[0, 1]), &[]),
            AS4,
            Reset(3, upd::OPTIONAL_ATTRIBUTE_ERROR, attr(0x80, 15, &[0, 1])),
        ),
        // RFC 7606: treat-as-withdraw.
        (
            "missing ORIGIN",
            ok_update([as_path4(&[1]), next_hop([192, 0, 2, 1])].concat()),
            AS4,
            Withdraw(upd::MISSING_WELL_KNOWN_ATTRIBUTE, vec![1]),
        ),
        (
            "missing AS_PATH",
            ok_update([origin_igp(), next_hop([192, 0, 2, 1])].concat()),
            AS4,
            Withdraw(upd::MISSING_WELL_KNOWN_ATTRIBUTE, vec![2]),
        ),
        (
            "missing NEXT_HOP",
            ok_update([origin_igp(), as_path4(&[1])].concat()),
            AS4,
            Withdraw(upd::MISSING_WELL_KNOWN_ATTRIBUTE, vec![3]),
        ),
        (
            "no attributes at all",
            update_msg(&[], &[], &NLRI_10_1),
            AS4,
            Withdraw(upd::MISSING_WELL_KNOWN_ATTRIBUTE, vec![1]),
        ),
        (
            "ORIGIN flagged optional",
            ok_update(
                [
                    origin_bad_flags.clone(),
                    as_path4(&[1]),
                    next_hop([192, 0, 2, 1]),
                ]
                .concat(),
            ),
            AS4,
            Withdraw(upd::ATTRIBUTE_FLAGS_ERROR, origin_bad_flags),
        ),
        (
            "ORIGIN of 2 octets",
            ok_update(
                [
                    origin_len2.clone(),
                    as_path4(&[1]),
                    next_hop([192, 0, 2, 1]),
                ]
                .concat(),
            ),
            AS4,
            Withdraw(upd::ATTRIBUTE_LENGTH_ERROR, origin_len2),
        ),
        (
            "ORIGIN 3",
            ok_update([origin_3.clone(), as_path4(&[1]), next_hop([192, 0, 2, 1])].concat()),
            AS4,
            Withdraw(upd::INVALID_ORIGIN_ATTRIBUTE, origin_3),
        ),
        (
            "NEXT_HOP of 3 octets",
            ok_update([origin_igp(), as_path4(&[1]), nh_len3.clone()].concat()),
            AS4,
            Withdraw(upd::ATTRIBUTE_LENGTH_ERROR, nh_len3),
        ),
        (
            "NEXT_HOP 0.0.0.0",
            ok_update([origin_igp(), as_path4(&[1]), nh_zero.clone()].concat()),
            AS4,
            Withdraw(upd::INVALID_NEXT_HOP_ATTRIBUTE, nh_zero),
        ),
        (
            "NEXT_HOP multicast",
            ok_update([origin_igp(), as_path4(&[1]), nh_multicast.clone()].concat()),
            AS4,
            Withdraw(upd::INVALID_NEXT_HOP_ATTRIBUTE, nh_multicast),
        ),
        (
            "AS_PATH segment type 5",
            ok_update(
                [
                    origin_igp(),
                    attr(0x40, 2, &[5, 1, 0, 0, 0, 1]),
                    next_hop([192, 0, 2, 1]),
                ]
                .concat(),
            ),
            AS4,
            Withdraw(upd::MALFORMED_AS_PATH, vec![]),
        ),
        (
            "AS_PATH segment of 0 ASes",
            ok_update(
                [
                    origin_igp(),
                    attr(0x40, 2, &[2, 0]),
                    next_hop([192, 0, 2, 1]),
                ]
                .concat(),
            ),
            AS4,
            Withdraw(upd::MALFORMED_AS_PATH, vec![]),
        ),
        (
            "AS_PATH segment overruns",
            ok_update(
                [
                    origin_igp(),
                    attr(0x40, 2, &[2, 2, 0, 0, 0, 1]),
                    next_hop([192, 0, 2, 1]),
                ]
                .concat(),
            ),
            AS4,
            Withdraw(upd::MALFORMED_AS_PATH, vec![]),
        ),
        (
            "2-octet AS_PATH read as 4-octet",
            ok_update(
                [
                    origin_igp(),
                    attr(0x40, 2, &[2, 1, 0, 1]),
                    next_hop([192, 0, 2, 1]),
                ]
                .concat(),
            ),
            AS4,
            Withdraw(upd::MALFORMED_AS_PATH, vec![]),
        ),
        (
            "MED of 3 octets",
            ok_update([m(), med3.clone()].concat()),
            AS4,
            Withdraw(upd::ATTRIBUTE_LENGTH_ERROR, med3),
        ),
        (
            "LOCAL_PREF of 5 octets",
            ok_update([m(), lp5.clone()].concat()),
            AS4,
            Withdraw(upd::ATTRIBUTE_LENGTH_ERROR, lp5),
        ),
        (
            "COMMUNITIES of 6 octets",
            ok_update([m(), comm6.clone()].concat()),
            AS4,
            Withdraw(upd::ATTRIBUTE_LENGTH_ERROR, comm6),
        ),
        (
            "ORIGINATOR_ID of 3 octets",
            ok_update([m(), orig3.clone()].concat()),
            AS4,
            Withdraw(upd::ATTRIBUTE_LENGTH_ERROR, orig3),
        ),
        (
            "CLUSTER_LIST of 5 octets",
            ok_update([m(), cl5.clone()].concat()),
            AS4,
            Withdraw(upd::ATTRIBUTE_LENGTH_ERROR, cl5),
        ),
        (
            "last attribute overruns the attributes",
            ok_update([m(), vec![0x80, 4, 9, 0]].concat()),
            AS4,
            Withdraw(upd::ATTRIBUTE_LENGTH_ERROR, vec![]),
        ),
        (
            "attribute header cut short",
            ok_update([m(), vec![0x80]].concat()),
            AS4,
            Withdraw(upd::MALFORMED_ATTRIBUTE_LIST, vec![]),
        ),
        // RFC 7606: attribute discard.
        (
            "ATOMIC_AGGREGATE of 1 octet",
            ok_update([m(), atomic1].concat()),
            AS4,
            Discard(upd::ATTRIBUTE_LENGTH_ERROR),
        ),
        (
            "AGGREGATOR of 7 octets",
            ok_update([m(), aggr7].concat()),
            AS4,
            Discard(upd::ATTRIBUTE_LENGTH_ERROR),
        ),
        (
            "malformed AS4_PATH",
            ok_update(
                [
                    origin_igp(),
                    attr(0x40, 2, &[2, 1, 0, 1]),
                    next_hop([192, 0, 2, 1]),
                    attr(0xc0, 17, &[2, 2, 0, 0, 0, 1]),
                ]
                .concat(),
            ),
            AS2,
            Discard(upd::OPTIONAL_ATTRIBUTE_ERROR),
        ),
        (
            "MED twice",
            ok_update(
                [
                    m(),
                    attr(0x80, 4, &[0, 0, 0, 1]),
                    attr(0x80, 4, &[0, 0, 0, 2]),
                ]
                .concat(),
            ),
            AS4,
            Discard(upd::MALFORMED_ATTRIBUTE_LIST),
        ),
    ]
}

/// Every malformation named by RFC 4271 section 6 (and the RFC 7606 revisions) produces
/// the prescribed NOTIFICATION, or the treat-as-withdraw / attribute-discard outcome.
#[test]
fn every_malformation_gets_the_prescribed_handling() {
    let mut failures = Vec::new();
    for (name, bytes, cx, expect) in malformation_cases() {
        let got = Message::decode(&bytes, &cx);
        let ok = match (&expect, &got) {
            (Expect::Reset(code, subcode, data), Err(DecodeError::Malformed(n))) => {
                (n.code, n.subcode, &n.data) == (*code, *subcode, data)
            }
            (Expect::Withdraw(subcode, data), Ok((Message::Update(u), _))) => {
                u.treat_as_withdraw
                    && u.nlri.is_empty()
                    && u.attributes.is_none()
                    && u.withdrawn.contains(&prefix("10.1.0.0/24"))
                    && u.malformation == Some(Notification::new(3, *subcode, data.clone()))
            }
            (Expect::Discard(subcode), Ok((Message::Update(u), _))) => {
                !u.treat_as_withdraw
                    && u.nlri == vec![prefix("10.1.0.0/24")]
                    && u.malformation.as_ref().map(|n| (n.code, n.subcode)) == Some((3, *subcode))
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn discarded_attributes_are_gone_and_the_rest_is_kept() {
    let attrs = [
        mandatory(),
        attr(0x40, 6, &[1]),
        attr(0x80, 4, &[0, 0, 0, 1]),
        attr(0x80, 4, &[0, 0, 0, 2]),
    ]
    .concat();
    let Message::Update(u) = decode(&update_msg(&[], &attrs, &NLRI_10_1), &AS4) else {
        panic!()
    };
    let a = u.attributes.unwrap();
    assert!(!a.atomic_aggregate, "malformed ATOMIC_AGGREGATE discarded");
    assert_eq!(
        a.med,
        Some(1),
        "the first MED is kept, the repeated one discarded"
    );
    assert_eq!(a.next_hop, Some(Ipv4Addr::new(192, 0, 2, 1)));
}

#[test]
fn treat_as_withdraw_also_withdraws_mp_reach_routes() {
    let mp = attr(0x80, 14, &[0, 1, 1, 4, 192, 0, 2, 7, 0, 16, 10, 7]);
    let bad_origin = attr(0x40, 1, &[9]);
    let attrs = [mp, bad_origin, as_path4(&[1])].concat();
    let Message::Update(u) = decode(&update_msg(&[8, 10], &attrs, &[]), &AS4) else {
        panic!()
    };
    assert!(u.treat_as_withdraw);
    assert_eq!(
        u.withdrawn,
        vec![prefix("10.0.0.0/8"), prefix("10.7.0.0/16")]
    );
    assert_eq!(u.announced().count(), 0);
}

#[test]
fn unknown_optional_attributes_transitive_kept_with_partial_non_transitive_dropped() {
    let attrs = [mandatory(), attr(0xc0, 120, &[1, 2]), attr(0x80, 121, &[3])].concat();
    let Message::Update(u) = decode(&update_msg(&[], &attrs, &NLRI_10_1), &AS4) else {
        panic!()
    };
    assert_eq!(
        u.attributes.unwrap().unknown,
        vec![RawAttribute {
            flags: 0xe0,
            type_code: 120,
            value: vec![1, 2]
        }]
    );
}

#[test]
fn notifications_have_names() {
    let n = Notification::new(
        error_code::UPDATE_MESSAGE_ERROR,
        upd::MALFORMED_AS_PATH,
        vec![],
    );
    assert_eq!(
        n.to_string(),
        "UPDATE Message Error (3) / Malformed AS_PATH (11)"
    );
    assert_eq!(
        Notification::cease(cease::PEER_DE_CONFIGURED).subcode_name(),
        "Peer De-configured"
    );
    let _ = cap_code::GRACEFUL_RESTART;
}

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Mutated and truncated valid messages never panic, errors are NOTIFICATIONs RFC 4271
/// defines, and whatever decodes re-encodes into something that decodes again.
#[test]
fn fuzzed_messages_never_panic_and_fail_with_valid_notifications() {
    let mut corpus: Vec<(Vec<u8>, DecodeContext)> = Vec::new();
    for (enc, dec) in [(ENC4, AS4), (ENC2, AS2)] {
        corpus.extend(sample_messages().iter().map(|m| (m.encode(&enc), dec)));
    }
    corpus.extend(
        malformation_cases()
            .into_iter()
            .map(|(_, b, cx, _)| (b, cx)),
    );
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut ok, mut malformed, mut incomplete) = (0, 0, 0);
    for _ in 0..60_000 {
        let (orig, cx) = &corpus[rng.below(corpus.len())];
        let mut buf = orig.clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(6) {
                // Flip a byte of the body (the header is mostly kept so bodies get tested).
                0..=2 => {
                    let i = 19.min(buf.len()) + rng.below(buf.len().saturating_sub(19));
                    if let Some(b) = buf.get_mut(i) {
                        *b = rng.next() as u8;
                    }
                }
                3 => buf.truncate(rng.below(buf.len() + 1)),
                4 => {
                    let i = rng.below(buf.len() + 1);
                    buf.insert(i, rng.next() as u8);
                }
                _ => {
                    // Keep the length field honest after a change, so the body is decoded.
                    if buf.len() >= 19 && buf.len() <= 4096 {
                        let len = buf.len() as u16;
                        buf[16..18].copy_from_slice(&len.to_be_bytes());
                    }
                }
            }
        }
        match Message::decode(&buf, cx) {
            Ok((m, used)) => {
                ok += 1;
                assert!(used <= buf.len() && used >= 19);
                let enc = EncodeContext {
                    four_octet_as: cx.four_octet_as,
                };
                let again = m.encode(&enc);
                assert!(
                    Message::decode(&again, cx).is_ok(),
                    "{m:?} re-encodes into {again:02x?}"
                );
            }
            Err(DecodeError::Incomplete) => {
                incomplete += 1;
                let declared = buf
                    .get(16..18)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])));
                assert!(buf.len() < 19 || declared.is_some_and(|d| buf.len() < d));
            }
            Err(DecodeError::Malformed(n)) => {
                malformed += 1;
                assert!(matches!(n.code, 1..=3), "{n:?}");
                assert!(!n.subcode_name().is_empty(), "unnamed subcode {n:?}");
                assert!(n.data.len() <= 4096);
            }
        }
    }
    // The mutations reach all three outcomes, so the loop exercises the decoders.
    assert!(
        ok > 1000 && malformed > 1000 && incomplete > 100,
        "{ok} {malformed} {incomplete}"
    );
}

/// Live peers, BIRD 2 and GoBGP, each started by its test in a network namespace of its
/// own, talk to a raw TCP listener: their OPEN, KEEPALIVEs and UPDATEs decode into what
/// their configuration says.
mod live_peers {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const OUR_AS: u16 = 65001;

    /// The namespace, the daemon and the scratch directory a test made, removed by name and
    /// pid when it ends, pass or fail.
    struct Lab {
        netns: String,
        dir: PathBuf,
        daemon: Option<Child>,
        log: PathBuf,
    }

    impl Lab {
        fn new(test: &str) -> Lab {
            let netns = format!("bgpcodec-{test}-{}", std::process::id());
            let dir = std::env::temp_dir().join(&netns);
            std::fs::create_dir_all(&dir).unwrap();
            let log = dir.join("daemon.log");
            let lab = Lab {
                netns,
                dir,
                daemon: None,
                log,
            };
            run(&["ip", "netns", "add", &lab.netns]);
            run(&[
                "ip", "netns", "exec", &lab.netns, "ip", "link", "set", "lo", "up",
            ]);
            lab
        }

        /// Starts `args` inside the namespace, its output in the lab's log.
        fn start(&mut self, args: &[&str]) {
            let log = std::fs::File::create(&self.log).unwrap();
            let child = Command::new("ip")
                .args(["netns", "exec", &self.netns])
                .args(args)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start the daemon");
            self.daemon = Some(child);
        }

        /// Panics with the daemon's log if it has exited.
        fn check_alive(&mut self) {
            if let Some(Ok(Some(status))) = self.daemon.as_mut().map(|d| d.try_wait()) {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("the daemon exited ({status}); log:\n{log}");
            }
        }

        /// Binds listeners inside the namespace: `setns` on a helper thread moves only that
        /// thread, and the sockets stay in the namespace they were made in.
        fn listen(&self, ports: &[u16]) -> Vec<TcpListener> {
            let path = format!("/run/netns/{}", self.netns);
            let ports = ports.to_vec();
            std::thread::spawn(move || {
                let ns = std::fs::File::open(&path).expect("open netns");
                // SAFETY: setns on a valid namespace fd changes this thread's namespace only.
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                ports
                    .iter()
                    .map(|p| TcpListener::bind(("127.0.0.1", *p)).expect("bind in netns"))
                    .collect()
            })
            .join()
            .expect("listener thread")
        }
    }

    impl Drop for Lab {
        fn drop(&mut self) {
            if let Some(mut daemon) = self.daemon.take() {
                let _ = daemon.kill();
                let _ = daemon.wait();
            }
            let _ = Command::new("ip")
                .args(["netns", "del", &self.netns])
                .status();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn run(args: &[&str]) {
        let status = Command::new(args[0])
            .args(&args[1..])
            .status()
            .expect("spawn");
        assert!(status.success(), "{args:?} failed");
    }

    fn accept(listener: &TcpListener, deadline: Instant, lab: &mut Lab) -> TcpStream {
        listener.set_nonblocking(true).unwrap();
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_millis(200)))
                        .unwrap();
                    return s;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    lab.check_alive();
                    assert!(Instant::now() < deadline, "the peer did not connect");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    }

    /// Plays the passive side of a session: answers the peer's OPEN with ours and a
    /// KEEPALIVE, then reads until every `wanted` prefix was announced. Returns every
    /// message and the raw bytes received.
    fn session(
        lab: &mut Lab,
        listener: &TcpListener,
        our_open: Open,
        cx: DecodeContext,
        wanted: &[Ipv4Prefix],
    ) -> (Vec<Message>, Vec<u8>) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = accept(listener, deadline, lab);
        let enc = EncodeContext {
            four_octet_as: cx.four_octet_as,
        };
        let (mut raw, mut sent_open) = (Vec::new(), false);
        loop {
            let (messages, _, error) = split_messages(&raw, &cx);
            assert_eq!(error, None, "the peer sent a malformed message: {raw:02x?}");
            if !sent_open && !messages.is_empty() {
                conn.write_all(&Message::Open(our_open.clone()).encode(&enc))
                    .unwrap();
                conn.write_all(&Message::Keepalive.encode(&enc)).unwrap();
                sent_open = true;
            }
            let announced: Vec<Ipv4Prefix> = messages
                .iter()
                .filter_map(|m| match m {
                    Message::Update(u) => Some(u.announced().collect::<Vec<_>>()),
                    _ => None,
                })
                .flatten()
                .collect();
            if wanted.iter().all(|p| announced.contains(p)) {
                let bye = Notification::cease(cease::ADMINISTRATIVE_SHUTDOWN);
                let _ = conn.write_all(&Message::Notification(bye).encode(&enc));
                return (messages, raw);
            }
            assert!(
                Instant::now() < deadline,
                "routes not announced; got {messages:?}"
            );
            let mut buf = [0u8; 4096];
            match conn.read(&mut buf) {
                Ok(0) => panic!("the peer closed the session; got {messages:?}"),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn hex_of(raw: &[u8]) -> String {
        raw.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// What a peer was configured to send.
    struct Expected {
        asn: u32,
        id: Ipv4Addr,
        origin: Origin,
        next_hop: Ipv4Addr,
        med: u32,
        community: u32,
        prefixes: Vec<Ipv4Prefix>,
    }

    fn check_stream(messages: &[Message], e: &Expected) {
        let Message::Open(open) = &messages[0] else {
            panic!("first message is not an OPEN: {messages:?}")
        };
        assert_eq!(open.version, 4);
        assert_eq!(open.my_as, AS_TRANS, "a 4-octet AS is AS_TRANS in My AS");
        assert_eq!(open.asn(), e.asn);
        assert_eq!(open.hold_time, 30);
        assert_eq!(open.bgp_identifier, e.id);
        assert!(open.supports_family(AFI_IPV4, SAFI_UNICAST), "{open:?}");
        assert!(open.supports_route_refresh(), "{open:?}");
        assert!(
            messages.contains(&Message::Keepalive),
            "our OPEN is answered with a KEEPALIVE"
        );

        let mut announced = Vec::new();
        for u in messages.iter().filter_map(|m| {
            if let Message::Update(u) = m {
                Some(u)
            } else {
                None
            }
        }) {
            assert!(!u.treat_as_withdraw && u.malformation.is_none(), "{u:?}");
            if u.announced().next().is_none() {
                continue;
            }
            let a = u.attributes.as_ref().unwrap();
            assert_eq!(a.origin, e.origin);
            assert_eq!(a.as_path, AsPath::from_sequence(vec![e.asn]), "{a:?}");
            assert_eq!(u.next_hop(), Some(e.next_hop));
            assert_eq!(a.med, Some(e.med));
            assert!(a.communities.contains(&e.community), "{a:?}");
            announced.extend(u.announced());
        }
        announced.sort();
        let mut wanted = e.prefixes.clone();
        wanted.sort();
        assert_eq!(announced, wanted);
    }

    /// AS4_PATH carrying `asn` alone, as it crosses a 2-octet session.
    fn as4_path_of(asn: u32) -> Vec<u8> {
        let mut a = vec![0xc0, type_code::AS4_PATH, 6, 2, 1];
        a.extend_from_slice(&asn.to_be_bytes());
        a
    }

    const BIRD_AS: u32 = 4_200_000_001;

    fn bird_config(log: &std::path::Path, ports: [u16; 2]) -> String {
        let session = |name: &str, port: u16| {
            format!(
                "protocol bgp {name} {{
                    local 127.0.0.2 as {BIRD_AS};
                    neighbor 127.0.0.1 port {port} as {OUR_AS};
                    multihop;
                    connect delay time 1;
                    connect retry time 2;
                    hold time 30;
                    ipv4 {{
                        import none;
                        export filter {{ bgp_med = 50; bgp_community.add((65002, 100)); accept; }};
                    }};
                }}\n"
            )
        };
        format!(
            "log \"{}\" all;
            router id 10.255.0.1;
            protocol device {{ }}
            protocol static {{
                ipv4;
                route 10.99.1.0/24 blackhole;
                route 10.99.2.0/25 blackhole;
            }}
            {}{}",
            log.display(),
            session("sess4", ports[0]),
            session("sess2", ports[1])
        )
    }

    /// BIRD 2 on a 4-octet session and on a 2-octet one (AS_TRANS in AS_PATH, the real
    /// path in AS4_PATH, put back together on decode).
    #[test]
    fn bird2_open_keepalive_update_stream_decodes() {
        let mut lab = Lab::new("bird");
        let listeners = lab.listen(&[1791, 1792]);
        let conf = lab.dir.join("bird.conf");
        std::fs::write(&conf, bird_config(&lab.dir.join("bird.log"), [1791, 1792])).unwrap();
        let (conf, sock) = (
            conf.display().to_string(),
            lab.dir.join("bird.ctl").display().to_string(),
        );
        lab.start(&["bird", "-f", "-c", &conf, "-s", &sock]);
        let expected = Expected {
            asn: BIRD_AS,
            id: Ipv4Addr::new(10, 255, 0, 1),
            origin: Origin::Igp,
            next_hop: Ipv4Addr::new(127, 0, 0, 2),
            med: 50,
            community: (65002 << 16) | 100,
            prefixes: vec![prefix("10.99.1.0/24"), prefix("10.99.2.0/25")],
        };

        let ours = Open::new(
            u32::from(OUR_AS),
            90,
            Ipv4Addr::new(10, 255, 0, 2),
            vec![Capability::Multiprotocol {
                afi: AFI_IPV4,
                safi: SAFI_UNICAST,
            }],
        );
        let (messages, raw) = session(&mut lab, &listeners[0], ours, AS4, &expected.prefixes);
        eprintln!("BIRD 4-octet stream: {}", hex_of(&raw));
        check_stream(&messages, &expected);

        // No 4-octet capability from us this time.
        let ours = Open {
            version: 4,
            my_as: OUR_AS,
            hold_time: 90,
            bgp_identifier: Ipv4Addr::new(10, 255, 0, 2),
            capabilities: vec![Capability::Multiprotocol {
                afi: AFI_IPV4,
                safi: SAFI_UNICAST,
            }],
        };
        let (messages, raw) = session(&mut lab, &listeners[1], ours, AS2, &expected.prefixes);
        eprintln!("BIRD 2-octet stream: {}", hex_of(&raw));
        check_stream(&messages, &expected);
        let as4_path = as4_path_of(BIRD_AS);
        assert!(
            raw.windows(as4_path.len()).any(|w| w == as4_path),
            "AS4_PATH on the wire"
        );
    }

    const GOBGP_AS: u32 = 4_200_000_002;

    /// GoBGP, with a route added through its API after it started.
    #[test]
    fn gobgp_open_keepalive_update_stream_decodes() {
        let mut lab = Lab::new("gobgp");
        let listeners = lab.listen(&[1793]);
        let conf = lab.dir.join("gobgpd.toml");
        std::fs::write(
            &conf,
            format!(
                r#"[global.config]
  as = {GOBGP_AS}
  router-id = "10.255.0.3"
  port = -1
[global.apply-policy.config]
  default-export-policy = "accept-route"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = {OUR_AS}
  [neighbors.transport.config]
    remote-port = 1793
    local-address = "127.0.0.3"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 30
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
"#
            ),
        )
        .unwrap();
        let conf = conf.display().to_string();
        lab.start(&["gobgpd", "-f", &conf, "--api-hosts", "127.0.0.1:50051"]);

        // The API comes up shortly after the daemon: retry the route add for a bounded time.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let added = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &lab.netns,
                    "gobgp",
                    "-u",
                    "127.0.0.1",
                    "-p",
                    "50051",
                ])
                .args([
                    "global",
                    "rib",
                    "add",
                    "10.98.1.0/24",
                    "nexthop",
                    "127.0.0.3",
                ])
                .args(["med", "40", "community", "65002:200", "-a", "ipv4"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run gobgp");
            if added.success() {
                break;
            }
            lab.check_alive();
            assert!(Instant::now() < deadline, "gobgp API did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }

        let expected = Expected {
            asn: GOBGP_AS,
            id: Ipv4Addr::new(10, 255, 0, 3),
            origin: Origin::Incomplete,
            next_hop: Ipv4Addr::new(127, 0, 0, 3),
            med: 40,
            community: (65002 << 16) | 200,
            prefixes: vec![prefix("10.98.1.0/24")],
        };
        let ours = Open::new(
            u32::from(OUR_AS),
            90,
            Ipv4Addr::new(10, 255, 0, 2),
            vec![
                Capability::Multiprotocol {
                    afi: AFI_IPV4,
                    safi: SAFI_UNICAST,
                },
                Capability::RouteRefresh,
            ],
        );
        let (messages, raw) = session(&mut lab, &listeners[0], ours, AS4, &expected.prefixes);
        eprintln!("GoBGP stream: {}", hex_of(&raw));
        check_stream(&messages, &expected);
    }
}
