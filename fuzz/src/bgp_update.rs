//! An UPDATE's body (RFC 4271 section 4.3) and its path attributes (section 5, RFC 4760
//! MP_REACH/MP_UNREACH, RFC 6793 AS4_PATH, RFC 7606 error handling), decoded as the session
//! does, under both AS number sizes: the input is the body, the header is made for it.
//!
//! Holds for every input: decoding ends in an UPDATE or an UPDATE Message Error (code 3) or a
//! header error for a body too long; what the RIB reads of an UPDATE (its announced and
//! withdrawn prefixes, its next hop) can be read; a clean UPDATE re-encodes into the same.

use bgp::packet::{DecodeContext, DecodeError, Message};

use crate::bgp_message::reencodes;

const HEADER_LEN: usize = 19;
const MAX_MESSAGE_LEN: usize = 4096;
/// RFC 4271 section 4.1, type 2.
const UPDATE: u8 = 2;

pub fn run(body: &[u8]) {
    let Some(message) = with_header(body) else {
        return;
    };
    for four_octet_as in [true, false] {
        match Message::decode(&message, &DecodeContext { four_octet_as }) {
            Ok((Message::Update(update), used)) => {
                assert_eq!(used, message.len());
                // What the RIB and the speaker read of it.
                let _ = update.announced().count();
                let _ = update.withdrawn_routes().count();
                let _ = update.next_hop();
                let _ = update.end_of_rib_family();
                if update.treat_as_withdraw {
                    assert!(update.nlri.is_empty() && update.attributes.is_none());
                }
                reencodes(&Message::Update(update), four_octet_as);
            }
            Ok((other, _)) => panic!("an UPDATE header decoded as {other:?}"),
            Err(DecodeError::Malformed(n)) => {
                assert_eq!(n.code, 3, "{n:?}");
                assert!(!n.subcode_name().is_empty(), "unnamed subcode {n:?}");
                assert!(n.data.len() <= MAX_MESSAGE_LEN);
            }
            Err(DecodeError::Incomplete) => panic!("a whole message is incomplete"),
        }
    }
}

/// `body` behind a valid UPDATE header, or `None` when no message can hold it.
fn with_header(body: &[u8]) -> Option<Vec<u8>> {
    let len = HEADER_LEN + body.len();
    if len > MAX_MESSAGE_LEN || body.len() < 4 {
        return None;
    }
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&(len as u16).to_be_bytes());
    m.push(UPDATE);
    m.extend_from_slice(body);
    Some(m)
}
