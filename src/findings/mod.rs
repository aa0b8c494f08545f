//! Findings: the model, fingerprints, masking and message templates.

pub mod eval;
pub mod message;
pub mod model;

pub use model::{FailOn, Finding, Source};
