//! The exit codes, frozen: schedulers and CI act on them.

pub const CLEAN: i32 = 0;
pub const FINDINGS: i32 = 1;
pub const ERROR: i32 = 2;
pub const INVALID_RULES: i32 = 3;
