//! BGP-4 speaker. Arrives with the BGP issue; the crate exists so the workspace has its final shape.
