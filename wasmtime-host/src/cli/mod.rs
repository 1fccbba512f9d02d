//! The CLI's larger commands, one file each.

pub mod coldstart;
pub mod demo;
pub mod memory;
pub mod serve;
pub mod task;
