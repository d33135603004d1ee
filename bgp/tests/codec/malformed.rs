//! Every malformation RFC 4271 section 6 and RFC 7606 name gets the prescribed handling:
//! session reset, treat-as-withdraw or attribute discard.

use super::*;

/// What decoding must make of a malformed message.
#[derive(Debug)]
pub(crate) enum Expect {
    /// `Err(Malformed)` with this NOTIFICATION: code, subcode, data.
    Reset(u8, u8, Vec<u8>),
    /// An UPDATE treated as withdraw (RFC 7606): the malformation it records.
    Withdraw(u8, Vec<u8>),
    /// An UPDATE whose attribute was discarded: the malformation, and the route still
    /// announced.
    Discard(u8),
}

pub(crate) fn malformation_cases() -> Vec<(&'static str, Vec<u8>, DecodeContext, Expect)> {
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
