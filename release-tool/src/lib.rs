//! What `scripts/release` does to the built components once cargo and wac have made them:
//! stamps each with its metadata, encodes the WIT package, and describes the lot in a manifest
//! and a SHA-256 sums file. Nothing here reads the clock or the machine's paths, so the same
//! inputs give the same bytes.

pub mod artifacts;
pub mod interface;
pub mod manifest;
pub mod stamp;
pub mod wit_package;
