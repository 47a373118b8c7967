//! zrep's library: everything but argument parsing, so that tests and fuzzers can
//! reach the planner and the protocol.
//!
//! - [`plan`]: what to send next, a pure function of both sides' snapshots;
//! - [`filter`]: which datasets of a recursive tree travel (patterns, opt-out);
//! - [`replicate`]: runs a plan between two [`side::Side`]s;
//! - [`transfer`] and [`pump`]: one stream through pipes and threads;
//! - [`proto`], [`serve`]: the framed protocol and its server end;
//! - [`local`]: operations on this machine's pools through libzfs;
//! - [`policy`]: what a restricted `zrep serve` lets its client do;
//! - [`link`]: the session's pipes, with a stall timeout and keepalives;
//! - [`compress`], [`bwlimit`]: wire compression and the bandwidth limit;
//! - [`verify`]: `zrep verify`, both sides compared (and the target read back);
//! - [`error`]: the one error type, typed, with a stable wire form.

pub mod bwlimit;
pub mod clock;
pub mod compress;
pub mod config;
pub mod error;
pub mod failover;
pub mod filter;
pub mod hooks;
pub mod jobs;
pub mod link;
pub mod local;
pub mod lock;
pub mod names;
pub mod plan;
pub mod policy;
pub mod props;
pub mod proto;
pub mod pump;
pub mod replicate;
pub mod report;
pub mod retention;
pub mod serve;
pub mod side;
pub mod state;
pub mod transfer;
pub mod travel;
pub mod ui;
pub mod verify;
