//! The CLI's larger commands, one file each.

pub mod coldstart;
pub mod demo;
pub mod memory;
pub mod progress;
pub mod report;
pub mod serve;
pub mod settings;
pub mod task;
