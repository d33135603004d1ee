//! Splitting a TCP byte stream into messages.
