//! Every message and capability encodes and decodes back, on 4-octet and 2-octet sessions.

use super::*;

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
