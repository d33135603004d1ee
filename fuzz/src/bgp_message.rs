//! BGP messages as a peer's TCP stream brings them (RFC 4271 section 4): the bytes are read in
//! chunks through [`MessageStream`], the reader the speaker uses, under both AS number sizes.
//!
//! Holds for every input: the stream yields exactly what [`split_messages`] finds in the
//! whole buffer (same messages, same NOTIFICATION), never buffers more than a partial message
//! beyond the chunk just pushed, every NOTIFICATION is one RFC 4271 section 6 defines, and
//! every decoded message re-encodes into bytes that decode to the same message.

use bgp::packet::{
    split_messages, DecodeContext, EncodeContext, Message, MessageStream, PathAttributes,
};

/// RFC 4271 section 4.1: no message is longer.
const MAX_MESSAGE_LEN: usize = 4096;

pub fn run(data: &[u8]) {
    // Chunk sizes from the input's length, so that real captures are valid seeds as they are.
    let chunk = 1 + data.len() % 97;
    for four_octet_as in [true, false] {
        let cx = DecodeContext { four_octet_as };
        let (whole, used, error) = split_messages(data, &cx);
        assert!(used <= data.len());

        let mut stream = MessageStream::new();
        let mut streamed = Vec::new();
        let mut streamed_error = None;
        'read: for piece in data.chunks(chunk) {
            stream.push(piece);
            while let Some(next) = stream.next_message(&cx) {
                match next {
                    Ok(m) => streamed.push(m),
                    Err(n) => {
                        streamed_error = Some(n);
                        break 'read;
                    }
                }
            }
            assert!(
                stream.buffered() < MAX_MESSAGE_LEN + chunk,
                "{} bytes buffered",
                stream.buffered()
            );
        }
        assert_eq!(streamed, whole, "the stream and the splitter disagree");
        assert_eq!(
            streamed_error, error,
            "the stream and the splitter disagree"
        );
        if let Some(n) = &error {
            // Message Header Error, OPEN Message Error or UPDATE Message Error.
            assert!(matches!(n.code, 1..=3), "{n:?}");
            assert!(!n.subcode_name().is_empty(), "unnamed subcode {n:?}");
            assert!(n.data.len() <= MAX_MESSAGE_LEN);
        }
        for m in &whole {
            reencodes(m, four_octet_as);
        }
    }
}

/// `m` encodes into bytes that decode to `m` again (a message decoded from a peer is what
/// the speaker would send for it), unless decoding had to repair it.
pub(crate) fn reencodes(m: &Message, four_octet_as: bool) {
    let bytes = m.encode(&EncodeContext { four_octet_as });
    let cx = DecodeContext { four_octet_as };
    let again = match Message::decode(&bytes, &cx) {
        Ok((again, used)) => {
            assert_eq!(used, bytes.len());
            again
        }
        Err(e) => panic!("{m:?} re-encodes into {bytes:02x?}, which does not decode: {e:?}"),
    };
    if let (Message::Update(first), Message::Update(second)) = (m, &again) {
        // RFC 7606 repairs (treat-as-withdraw, discarded attributes) are one-way: compare
        // only what a clean UPDATE carries.
        if first.treat_as_withdraw || first.malformation.is_some() {
            return;
        }
        assert_eq!(first.withdrawn, second.withdrawn, "{bytes:02x?}");
        assert_eq!(first.nlri, second.nlri, "{bytes:02x?}");
        let announces = !first.nlri.is_empty()
            || first
                .attributes
                .as_ref()
                .is_some_and(|a| a.mp_reach.is_some());
        if announces {
            assert_eq!(first.attributes, second.attributes, "{bytes:02x?}");
        } else {
            // ORIGIN and AS_PATH describe announced routes; an UPDATE announcing nothing is
            // sent without them (`PathAttributes::encode`).
            // An UPDATE left with no attribute then carries none at all.
            let strip = |a: &Option<PathAttributes>| {
                a.clone()
                    .map(|a| PathAttributes {
                        origin: Default::default(),
                        as_path: Default::default(),
                        ..a
                    })
                    .filter(|a| *a != PathAttributes::default())
            };
            assert_eq!(
                strip(&first.attributes),
                strip(&second.attributes),
                "{bytes:02x?}"
            );
        }
    } else {
        assert_eq!(*m, again, "{bytes:02x?}");
    }
}
