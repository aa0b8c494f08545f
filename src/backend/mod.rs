//! Other engines the compiled rules translate to.

pub mod spark;
