//! Outputs: findings files, rejected rows, the run manifest and the
//! terminal summary.

pub mod atomic;
pub mod cases_out;
pub mod findings_out;
pub mod html;
pub mod junit;
pub mod manifest;
pub mod progress;
pub mod report_data;
pub mod sarif;
pub mod summary;
pub mod words;
pub mod workbook;

use std::io::Write;

use crate::input::RejectedRow;

pub use findings_out::{Format, Target};

pub(crate) fn write_rejected(rows: &[RejectedRow], w: &mut dyn Write) -> std::io::Result<()> {
    let mut c = csv::Writer::from_writer(w);
    c.write_record(["input", "file", "line", "column", "value", "reason"])?;
    for r in rows {
        c.write_record([r.input.name(), &r.file, &r.line.to_string(), &r.column, &r.value, &r.reason])?;
    }
    c.flush()?;
    Ok(())
}
