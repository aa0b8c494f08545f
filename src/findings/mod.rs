//! Findings: the model, fingerprints, masking and message templates; how
//! runs are compared (baseline) and decided on (exceptions); how detection
//! is scored against labels.

pub mod baseline;
pub mod cases;
pub mod eval;
pub mod exceptions;
pub mod lang;
pub mod message;
pub mod model;

pub use model::{FailOn, FailPolicy, Finding, Source};
