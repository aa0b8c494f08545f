//! The commands: what a user runs (scan, lint, rule tests, diff, the
//! catalogue). The top layer: it may use every module below it, and
//! nothing below uses it.

pub mod cases;
pub mod diff;
pub mod doc;
pub mod evaluate;
pub mod exit;
pub mod infer;
pub mod inputs;
pub mod lint;
pub mod memory;
pub mod options;
pub mod pack;
pub mod rule_tests;
pub mod scan;
pub mod spark;
pub mod triage;
pub mod write;
