//! posaudit: a rules-driven risk and compliance checker for POS merchant
//! acquiring.
//!
//! The modules follow the data's way through a scan: `input` reads and
//! validates rows, `rules` loads and checks the YAML pack, `checks` adds
//! derived columns, `engine` turns rules into polars plans and runs them,
//! `findings` models what a hit says, and `output` writes it down.

pub mod alloc;
pub mod app;
pub mod backend;
pub mod checks;
pub mod cleanup;
pub mod contract;
pub mod engine;
pub mod findings;
pub mod input;
pub mod mask;
pub mod output;
pub mod pool;
pub mod rules;

use std::path::PathBuf;

/// Every error a command can end with; `main` maps each to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Input(#[from] input::InputError),
    #[error("invalid rules:\n{0}")]
    Rules(rules::load::RuleErrors),
    #[error("invalid exceptions file:\n{0}")]
    Exceptions(rules::load::RuleErrors),
    #[error("invalid scoring file:\n{0}")]
    Scoring(rules::load::RuleErrors),
    #[error("cannot write output in {0}: {1}")]
    Output(PathBuf, std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Rules(_) | Error::Exceptions(_) | Error::Scoring(_) => app::exit::INVALID_RULES,
            _ => app::exit::ERROR,
        }
    }
}
