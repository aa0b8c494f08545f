//! The allocator the binaries use.
//!
//! A scan allocates and frees many buffers of hundreds of megabytes (polars
//! columns, joins, sorts) from two threads or more. polars recommends a
//! dedicated allocator over the system one for this; posaudit uses
//! mimalloc (`#[global_allocator]` in each binary).

pub use mimalloc::MiMalloc;
