//! Rules: the YAML model, loading with located errors, and validation
//! against the inputs' schema.

pub mod bounds;
pub mod cases;
pub mod compiled;
pub mod load;
pub mod model;
