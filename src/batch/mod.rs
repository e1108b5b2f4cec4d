//! Batch runs of `emolens annotate`: the inputs of a run and their output names ([`inputs`]),
//! the share of one worker of many ([`shard`]), and the per-video summary that makes runs
//! resumable ([`summary`]).

pub mod inputs;
pub mod shard;
pub mod summary;
