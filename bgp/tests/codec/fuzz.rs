//! A deterministic fuzz loop over mutated and truncated valid messages.

use super::malformed::malformation_cases;
use super::*;

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
