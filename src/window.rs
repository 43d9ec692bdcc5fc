//! Time windows: what "the last 24 hours, hour by hour" means exactly.
//!
//! Windows are aligned to the granularity in UTC (as Logs Insights aligns `bin()`), half-open
//! `[start, end)`, so every event counts in exactly one window. The seed script used a rolling "now"
//! and one query per hour; here one [`Span`] covers the whole range and is split only when a query
//! would return too many rows.

use std::fmt;

use jiff::{SignedDuration, Timestamp};

/// The width of one window, in whole minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Granularity {
    minutes: u32,
}

/// Why a granularity or range was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    #[error("the granularity must be at least 1 minute")]
    ZeroGranularity,
    #[error("the granularity must be at most 10080 minutes (one week), got {0}")]
    GranularityTooLarge(u32),
    #[error("the range must be at least 1 hour")]
    ZeroRange,
    #[error("the range must be at most 8760 hours (365 days), got {0}")]
    RangeTooLarge(u32),
    #[error("the end time {0} is out of range")]
    EndOutOfRange(Timestamp),
}

impl Granularity {
    pub fn from_minutes(minutes: u32) -> Result<Granularity, WindowError> {
        match minutes {
            0 => Err(WindowError::ZeroGranularity),
            m if m > 7 * 1440 => Err(WindowError::GranularityTooLarge(m)),
            m => Ok(Granularity { minutes: m }),
        }
    }

    pub fn minutes(self) -> u32 {
        self.minutes
    }

    fn seconds(self) -> i64 {
        i64::from(self.minutes) * 60
    }

    /// The period as Logs Insights writes it in `bin(...)`: the largest exact unit.
    pub fn bin_period(self) -> String {
        let m = self.minutes;
        if m.is_multiple_of(1440) {
            format!("{}d", m / 1440)
        } else if m.is_multiple_of(60) {
            format!("{}h", m / 60)
        } else {
            format!("{m}m")
        }
    }

    /// The start of the window that contains `t` (alignment to the epoch, i.e. UTC).
    pub fn floor(self, t: Timestamp) -> Timestamp {
        let secs = t.as_second().div_euclid(self.seconds()) * self.seconds();
        // Flooring moves a valid timestamp back by less than a week; jiff's range is far wider.
        Timestamp::from_second(secs).unwrap_or(t)
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} min", self.minutes)
    }
}

/// One window `[start, end)`. Kept to 16 bytes (a run can hold a million rows, each with its window).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    start_second: i64,
    length_seconds: u32,
}

impl Window {
    pub fn new(start: Timestamp, granularity: Granularity) -> Window {
        Window {
            start_second: start.as_second(),
            length_seconds: granularity.minutes * 60,
        }
    }

    pub fn start(&self) -> Timestamp {
        Timestamp::from_second(self.start_second).unwrap_or(Timestamp::MIN)
    }

    pub fn end(&self) -> Timestamp {
        Timestamp::from_second(self.start_second + i64::from(self.length_seconds))
            .unwrap_or(Timestamp::MAX)
    }
}

/// A run of whole, consecutive windows: `[start, end)` with `end - start` a multiple of the granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub start: Timestamp,
    pub end: Timestamp,
    pub granularity: Granularity,
}

impl Span {
    /// The span of the last `hours` before `end`. `end` is floored to the granularity, so a run at
    /// 17:48 reads through 17:00 and never reports a window that has not finished. When `hours` is
    /// not a whole number of windows, the span grows to the next whole window.
    pub fn ending_at(
        end: Timestamp,
        hours: u32,
        granularity: Granularity,
    ) -> Result<Span, WindowError> {
        if hours == 0 {
            return Err(WindowError::ZeroRange);
        }
        if hours > 8760 {
            return Err(WindowError::RangeTooLarge(hours));
        }
        let end = granularity.floor(end);
        let range_minutes = u64::from(hours) * 60;
        let windows = range_minutes.div_ceil(u64::from(granularity.minutes()));
        let seconds = windows as i64 * granularity.seconds();
        let start = end
            .checked_sub(SignedDuration::from_secs(seconds))
            .map_err(|_| WindowError::EndOutOfRange(end))?;
        Ok(Span {
            start,
            end,
            granularity,
        })
    }

    /// How many windows the span holds.
    pub fn window_count(&self) -> u64 {
        ((self.end.as_second() - self.start.as_second()) / self.granularity.seconds()).max(0) as u64
    }

    /// The window that starts at `bin_start`, if it lies inside this span. A bin that starts at or
    /// after the end comes from the last, inclusive second of the query (Logs Insights' endTime is
    /// inclusive) and belongs to the next run.
    pub fn window_at(&self, bin_start: Timestamp) -> Option<Window> {
        let start = self.granularity.floor(bin_start);
        if start < self.start || start >= self.end {
            return None;
        }
        Some(Window::new(start, self.granularity))
    }

    /// Splits the span into `parts` spans of whole windows, as even as possible, in time order.
    pub fn split(&self, parts: u64) -> Vec<Span> {
        let total = self.window_count();
        let parts = parts.clamp(1, total.max(1));
        let mut spans = Vec::with_capacity(parts as usize);
        let mut start = self.start;
        for i in 0..parts {
            // Spread the remainder over the first spans.
            let windows = total / parts + u64::from(i < total % parts);
            let end = Timestamp::from_second(
                start.as_second() + windows as i64 * self.granularity.seconds(),
            )
            .unwrap_or(self.end);
            spans.push(Span {
                start,
                end,
                granularity: self.granularity,
            });
            start = end;
        }
        spans
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} .. {}", format_utc(self.start), format_utc(self.end))
    }
}

/// `2026-12-02T15:00:00Z`: the timestamp form of the CSV and the console.
pub fn format_utc(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn g(minutes: u32) -> Granularity {
        Granularity::from_minutes(minutes).unwrap()
    }

    #[test]
    fn bin_period_uses_the_largest_exact_unit() {
        assert_eq!(g(15).bin_period(), "15m");
        assert_eq!(g(60).bin_period(), "1h");
        assert_eq!(g(90).bin_period(), "90m");
        assert_eq!(g(120).bin_period(), "2h");
        assert_eq!(g(1440).bin_period(), "1d");
    }

    #[test]
    fn granularity_bounds() {
        assert_eq!(
            Granularity::from_minutes(0),
            Err(WindowError::ZeroGranularity)
        );
        assert_eq!(
            Granularity::from_minutes(20000),
            Err(WindowError::GranularityTooLarge(20000))
        );
    }

    #[test]
    fn hourly_span_ends_at_the_last_full_hour() {
        let span = Span::ending_at(ts("2025-11-21T17:48:41Z"), 24, g(60)).unwrap();
        assert_eq!(span.end, ts("2025-11-21T17:00:00Z"));
        assert_eq!(span.start, ts("2025-11-20T17:00:00Z"));
        assert_eq!(span.window_count(), 24);
    }

    #[test]
    fn an_end_exactly_on_a_boundary_is_kept() {
        let span = Span::ending_at(ts("2026-12-02T15:00:00Z"), 1, g(60)).unwrap();
        assert_eq!(span.end, ts("2026-12-02T15:00:00Z"));
        assert_eq!(span.start, ts("2026-12-02T14:00:00Z"));
    }

    #[test]
    fn quarter_hour_and_daily_spans() {
        let span = Span::ending_at(ts("2026-12-02T15:07:00Z"), 24, g(15)).unwrap();
        assert_eq!(span.end, ts("2026-12-02T15:00:00Z"));
        assert_eq!(span.window_count(), 96);
        let span = Span::ending_at(ts("2026-12-02T15:07:00Z"), 48, g(1440)).unwrap();
        assert_eq!(span.end, ts("2026-12-02T00:00:00Z"));
        assert_eq!(span.start, ts("2026-11-30T00:00:00Z"));
        assert_eq!(span.window_count(), 2);
    }

    #[test]
    fn a_range_that_is_not_whole_windows_grows_to_the_next_window() {
        let span = Span::ending_at(ts("2026-12-02T00:00:00Z"), 5, g(1440)).unwrap();
        assert_eq!(span.window_count(), 1);
        assert_eq!(span.start, ts("2026-12-01T00:00:00Z"));
    }

    #[test]
    fn range_bounds() {
        assert_eq!(
            Span::ending_at(ts("2026-12-02T00:00:00Z"), 0, g(60)),
            Err(WindowError::ZeroRange)
        );
        assert_eq!(
            Span::ending_at(ts("2026-12-02T00:00:00Z"), 9000, g(60)),
            Err(WindowError::RangeTooLarge(9000))
        );
    }

    #[test]
    fn window_at_maps_bins_and_drops_the_inclusive_end() {
        let span = Span::ending_at(ts("2026-12-02T16:00:00Z"), 2, g(60)).unwrap();
        let w = span.window_at(ts("2026-12-02T14:00:00Z")).unwrap();
        assert_eq!(w.start(), ts("2026-12-02T14:00:00Z"));
        assert_eq!(w.end(), ts("2026-12-02T15:00:00Z"));
        assert_eq!(
            span.window_at(ts("2026-12-02T15:00:00Z")).unwrap().end(),
            ts("2026-12-02T16:00:00Z")
        );
        // The bin that starts at the end holds only events from the inclusive last second.
        assert_eq!(span.window_at(ts("2026-12-02T16:00:00Z")), None);
        assert_eq!(span.window_at(ts("2026-12-02T13:00:00Z")), None);
    }

    #[test]
    fn window_at_floors_unaligned_bins() {
        let span = Span::ending_at(ts("2026-12-02T16:00:00Z"), 2, g(15)).unwrap();
        let w = span.window_at(ts("2026-12-02T14:20:00Z")).unwrap();
        assert_eq!(w.start(), ts("2026-12-02T14:15:00Z"));
        assert_eq!(w.end(), ts("2026-12-02T14:30:00Z"));
    }

    #[test]
    fn split_covers_the_span_exactly_with_whole_windows() {
        let span = Span::ending_at(ts("2026-12-02T00:00:00Z"), 288, g(60)).unwrap();
        let parts = span.split(2);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].start, span.start);
        assert_eq!(parts[0].end, parts[1].start);
        assert_eq!(parts[1].end, span.end);
        assert_eq!(parts[0].window_count(), 144);

        let span = Span::ending_at(ts("2026-12-02T00:00:00Z"), 7, g(60)).unwrap();
        let parts = span.split(3);
        let counts: Vec<u64> = parts.iter().map(Span::window_count).collect();
        assert_eq!(counts, vec![3, 2, 2]);
        assert_eq!(parts[2].end, span.end);
        // Never more parts than windows.
        assert_eq!(span.split(100).len(), 7);
    }

    #[test]
    fn a_window_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Window>(), 16);
        let w = Window::new(ts("2026-12-02T14:00:00Z"), g(15));
        assert_eq!(w.end(), ts("2026-12-02T14:15:00Z"));
    }

    #[test]
    fn format_is_rfc3339_utc_with_z() {
        assert_eq!(
            format_utc(ts("2026-12-02T15:00:00Z")),
            "2026-12-02T15:00:00Z"
        );
    }
}
