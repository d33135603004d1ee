//! UPDATE specifics (AS4_PATH and AS4_AGGREGATOR of RFC 6793, MP_REACH_NLRI, End-of-RIB,
//! packing into 4096 octets) and splitting the byte stream into messages.

use super::*;

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
        .map(|i| Ipv4Prefix::containing(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap())
        .collect();
    let withdrawn: Vec<Ipv4Prefix> = (0..1500u32)
        .map(|i| Ipv4Prefix::containing(Ipv4Addr::from(0x0b00_0000 | i), 32).unwrap())
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
