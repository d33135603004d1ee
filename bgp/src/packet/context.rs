//! What the codec must know about the session: what the OPEN exchange negotiated.

/// What decoding must know about the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeContext {
    /// Both sides advertised the 4-octet AS capability: AS_PATH and AGGREGATOR carry
    /// 4-octet AS numbers (RFC 6793 section 4.1). Before the OPEN exchange it is false.
    pub four_octet_as: bool,
}

/// What encoding must know about the session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeContext {
    /// Both sides advertised the 4-octet AS capability; when false, AS numbers above 65535
    /// are sent as AS_TRANS with AS4_PATH / AS4_AGGREGATOR (RFC 6793 section 4.2.2).
    pub four_octet_as: bool,
}
