//! Bounds-checked reading of message bodies.
