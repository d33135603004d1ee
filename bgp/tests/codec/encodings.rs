//! Hand-derived encodings and streams captured from BIRD 2 and GoBGP decode, and re-encode
//! into the same bytes.

use super::*;

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
/// routes exported with MED 50 and community 65002:100) by the live BIRD test (`live_peers.rs`), on a 4-octet
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
