//! Labs, traffic generation and baselines.
