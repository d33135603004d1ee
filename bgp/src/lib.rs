//! BGP-4 speaker (RFC 4271): the message codec in [`packet`]; the FSM and RIBs build on it.

pub mod fsm;
pub mod packet;
pub mod rib;
pub mod speaker;
