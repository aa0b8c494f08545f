//! Rules: the YAML model, loading with located errors, and validation
//! against the inputs' schema.

pub mod bounds;
pub mod catalogue;
pub mod diff;
pub mod load;
pub mod model;
pub mod testing;
pub mod validate;
