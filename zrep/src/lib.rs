//! zrep's library: everything but argument parsing, so that tests and fuzzers can
//! reach the planner and the protocol.
//!
//! - [`plan`]: what to send next, a pure function of both sides' snapshots;
//! - [`replicate`]: runs a plan between two [`side::Side`]s;
//! - [`transfer`] and [`pump`]: one stream through pipes and threads;
//! - [`proto`], [`serve`]: the framed protocol and its server end;
//! - [`local`]: operations on this machine's pools through libzfs.

pub mod clock;
pub mod config;
pub mod jobs;
pub mod local;
pub mod lock;
pub mod plan;
pub mod proto;
pub mod pump;
pub mod replicate;
pub mod retention;
pub mod serve;
pub mod side;
pub mod state;
pub mod transfer;
pub mod ui;
