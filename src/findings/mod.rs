//! Findings: the model, fingerprints, masking and message templates.

pub mod eval;
pub mod mask;
pub mod message;
pub mod model;

pub use model::{Finding, Source};
