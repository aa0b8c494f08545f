//! `--window 30d`: only the transactions of the N days ending the as-of
//! date, so that a daily cron line can point at a folder of exports and
//! need not compute a file list.

use std::path::Path;

use chrono::{Duration, NaiveDate};
use polars::prelude::*;

/// The days a run checks, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl TimeWindow {
    /// The `days` days ending `as_of`.
    pub fn ending(as_of: NaiveDate, days: u32) -> TimeWindow {
        TimeWindow {
            from: as_of - Duration::days(i64::from(days.max(1)) - 1),
            to: as_of,
        }
    }

    /// The date a daily export's name carries (`transactions_2026-11-20.csv`,
    /// `pos_20261120.csv`), if it carries exactly one.
    pub fn date_in_name(path: &Path) -> Option<NaiveDate> {
        let stem = path.file_stem()?.to_str()?;
        let digits: Vec<(usize, char)> = stem.char_indices().collect();
        let mut found = None;
        for (i, _) in digits.iter().enumerate() {
            for (len, fmt) in [(10, "%Y-%m-%d"), (8, "%Y%m%d")] {
                let Some(end) = digits.get(i + len - 1) else { continue };
                let text = &stem[digits[i].0..end.0 + end.1.len_utf8()];
                // A date must stand apart from other digits (not part of a
                // longer number such as a batch id).
                let before = i.checked_sub(1).map(|j| digits[j].1.is_ascii_digit()).unwrap_or(false);
                let after = digits.get(i + len).is_some_and(|(_, c)| c.is_ascii_digit());
                if before || after {
                    continue;
                }
                if let Ok(d) = NaiveDate::parse_from_str(text, fmt) {
                    if found.is_some_and(|f| f != d) {
                        return None;
                    }
                    found = Some(d);
                }
            }
        }
        found
    }

    /// Whether a file may hold rows of the window: its name has no date, or
    /// a date within a day of the window (an export of one business day
    /// may hold the minutes after midnight).
    pub fn may_hold(&self, path: &Path) -> bool {
        match Self::date_in_name(path) {
            None => true,
            Some(d) => d >= self.from - Duration::days(1) && d <= self.to + Duration::days(1),
        }
    }

    /// The rows of `df` whose `time_column` falls in the window, and how
    /// many were left out.
    pub fn keep(&self, df: DataFrame, time_column: &str) -> PolarsResult<(DataFrame, u64)> {
        if !df.schema().contains(time_column) {
            return Ok((df, 0));
        }
        let start = self.from.and_hms_opt(0, 0, 0).expect("midnight").and_utc().timestamp_millis();
        let end = (self.to + Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp_millis();
        let before = df.height();
        let t = df.column(time_column)?.cast(&DataType::Int64)?;
        let t = t.i64()?;
        let mask: BooleanChunked = t.iter().map(|v| v.is_some_and(|v| v >= start && v < end)).collect();
        let kept = df.filter(&mask)?;
        let out = (before - kept.height()) as u64;
        Ok((kept, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn dates_in_names() {
        assert_eq!(
            TimeWindow::date_in_name(Path::new("x/transactions_2026-11-20.csv")),
            Some(d("2026-11-20"))
        );
        assert_eq!(TimeWindow::date_in_name(Path::new("pos_20261120.csv")), Some(d("2026-11-20")));
        assert_eq!(TimeWindow::date_in_name(Path::new("transactions.csv")), None);
        assert_eq!(
            TimeWindow::date_in_name(Path::new("batch_1202611201.csv")),
            None,
            "part of a longer number"
        );
        assert_eq!(
            TimeWindow::date_in_name(Path::new("t_2026-11-20_to_2026-11-21.csv")),
            None,
            "two dates: no single day"
        );
        assert_eq!(TimeWindow::date_in_name(Path::new("交易明细_20261120.csv")), Some(d("2026-11-20")));
    }

    #[test]
    fn a_window_ends_on_the_as_of_day() {
        let w = TimeWindow::ending(d("2026-11-30"), 30);
        assert_eq!(w.from, d("2026-11-01"));
        assert!(w.may_hold(Path::new("t_2026-10-31.csv")), "a day of slack");
        assert!(!w.may_hold(Path::new("t_2026-10-30.csv")));
        assert!(w.may_hold(Path::new("t_2026-12-01.csv")));
    }
}
