//! Working days and distances: small pure helpers behind derived columns.

use chrono::{Datelike, NaiveDate, Weekday};

/// Weekdays after `from` up to and including `to` (public holidays are not
/// known to the tool, so a review over a holiday week can count long).
pub(crate) fn working_days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    if to <= from {
        return 0;
    }
    let days = (to - from).num_days();
    let full_weeks = days / 7;
    let mut n = full_weeks * 5;
    let mut d = from + chrono::Duration::days(full_weeks * 7);
    while d < to {
        d = d.succ_opt().expect("date in range");
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            n += 1;
        }
    }
    n
}

/// Great-circle distance in kilometres.
pub(crate) fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let r = 6371.0088;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * r * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn working_days_skip_weekends() {
        // 2026-11-20 is a Friday.
        assert_eq!(working_days_between(d(2026, 11, 20), d(2026, 11, 23)), 1);
        assert_eq!(working_days_between(d(2026, 11, 20), d(2026, 11, 27)), 5);
        assert_eq!(working_days_between(d(2026, 11, 16), d(2026, 11, 30)), 10);
        assert_eq!(working_days_between(d(2026, 11, 20), d(2026, 11, 20)), 0);
    }

    #[test]
    fn distance_beijing_shanghai() {
        let km = haversine_km(39.9042, 116.4074, 31.2304, 121.4737);
        assert!((km - 1067.0).abs() < 10.0, "{km}");
    }
}
