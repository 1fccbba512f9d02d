//! The CLI's larger commands, one file each.

pub mod demo;
pub mod task;
