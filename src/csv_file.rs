//! The CSV: the seed's long format, one row per account, county and window.
//!
//! `account_id,county,timestamp,avg_mvl_metric`, the timestamp being the window's END in UTC
//! (`2026-12-02T15:00:00Z`) and the value rounded to 4 decimals. The csv crate quotes what needs
//! quoting, so county names with spaces, commas or quotes survive pandas and Excel. Rows are written
//! as a stream; reading back (for `mvl-monitor plot`) checks the header and every field, by line.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use crate::chart::Series;
use crate::window::format_utc;

/// The header, exactly as the seed wrote it.
pub const HEADER: [&str; 4] = ["account_id", "county", "timestamp", "avg_mvl_metric"];

/// One row to write.
#[derive(Clone, Copy, Debug)]
pub struct CsvRow<'a> {
    pub account: &'a str,
    pub county: &'a str,
    pub window_end: Timestamp,
    pub value: f64,
}

/// Writes the header and `rows` (already in order) to `out`. Returns the number of rows.
pub fn write_rows<'a, W: Write>(
    out: W,
    rows: impl IntoIterator<Item = CsvRow<'a>>,
) -> io::Result<u64> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(HEADER).map_err(io::Error::other)?;
    let mut count = 0;
    for row in rows {
        let time = format_utc(row.window_end);
        let value = four_decimals(row.value);
        writer
            .write_record([row.account, row.county, time.as_str(), value.as_str()])
            .map_err(io::Error::other)?;
        count += 1;
    }
    writer.flush()?;
    Ok(count)
}

/// `value` rounded to 4 decimals, half to even, as the exact mean would be. Logs Insights averages in
/// floating point, so an exact mean of 0.77265 arrives as 0.7726500000000001; rounding that directly
/// would give 0.7727. The float noise is removed first (at 10 decimals), then the decimal is rounded.
pub fn four_decimals(value: f64) -> String {
    let scaled = (value.abs() * 1e10).round();
    if !scaled.is_finite() || scaled >= 1e30 {
        return format!("{value:.4}");
    }
    let scaled = scaled as u128;
    let (mut units, rest) = (scaled / 1_000_000, scaled % 1_000_000);
    if rest > 500_000 || (rest == 500_000 && units % 2 == 1) {
        units += 1;
    }
    let sign = if value < 0.0 && units > 0 { "-" } else { "" };
    format!("{sign}{}.{:04}", units / 10_000, units % 10_000)
}

/// Why a CSV could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Bad {
        path: PathBuf,
        line: u64,
        problem: String,
    },
}

/// Reads a CSV of ours into one series per account and county, in file order.
pub fn read_series(path: &Path) -> Result<Vec<Series>, CsvError> {
    let file = std::fs::File::open(path).map_err(|source| CsvError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_series_from(file, path)
}

fn read_series_from<R: io::Read>(input: R, path: &Path) -> Result<Vec<Series>, CsvError> {
    let bad = |line: u64, problem: String| CsvError::Bad {
        path: path.to_path_buf(),
        line,
        problem,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| bad(1, format!("cannot read the header: {e}")))?
        .clone();
    if header.iter().collect::<Vec<_>>() != HEADER {
        return Err(bad(
            1,
            format!(
                "the header must be `{}`, found `{}`\n  plot reads the CSV files that `mvl-monitor collect` writes",
                HEADER.join(","),
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut series: Vec<Series> = Vec::new();
    let mut index: std::collections::HashMap<(String, String), usize> = Default::default();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            bad(line, e.to_string())
        })?;
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| record.get(i).unwrap_or("");
        let time: Timestamp = field(2).parse().map_err(|e| {
            bad(
                line,
                format!("timestamp {:?} is not an RFC 3339 time: {e}", field(2)),
            )
        })?;
        let value: f64 = field(3)
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                bad(
                    line,
                    format!("avg_mvl_metric {:?} is not a number", field(3)),
                )
            })?;
        let key = (field(0).to_string(), field(1).to_string());
        let slot = match index.get(&key) {
            Some(&slot) => slot,
            None => {
                series.push(Series {
                    account: key.0.clone(),
                    county: key.1.clone(),
                    points: Vec::new(),
                });
                index.insert(key, series.len() - 1);
                series.len() - 1
            }
        };
        series[slot].points.push((time.as_second(), value));
    }
    for s in &mut series {
        s.points.sort_by_key(|p| p.0);
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn writes_the_seed_header_window_ends_and_four_decimals() {
        let mut out = Vec::new();
        let n = write_rows(
            &mut out,
            [
                CsvRow {
                    account: "012345678901",
                    county: "Palm Beach",
                    window_end: ts("2026-12-02T15:00:00Z"),
                    value: 0.93124,
                },
                CsvRow {
                    account: "012345678901",
                    county: "St. Lucie",
                    window_end: ts("2026-12-02T15:00:00Z"),
                    value: 0.77416,
                },
                CsvRow {
                    account: "012345678901",
                    county: "Miami-Dade",
                    window_end: ts("2026-12-02T16:00:00Z"),
                    value: 1.0,
                },
            ],
        )
        .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "account_id,county,timestamp,avg_mvl_metric\n\
             012345678901,Palm Beach,2026-12-02T15:00:00Z,0.9312\n\
             012345678901,St. Lucie,2026-12-02T15:00:00Z,0.7742\n\
             012345678901,Miami-Dade,2026-12-02T16:00:00Z,1.0000\n"
        );
    }

    #[test]
    fn four_decimals_rounds_the_exact_mean_half_to_even() {
        assert_eq!(four_decimals(0.7726500000000001), "0.7726");
        assert_eq!(four_decimals(0.77275), "0.7728");
        assert_eq!(four_decimals(0.80535), "0.8054");
        assert_eq!(four_decimals(0.79605), "0.7960");
        assert_eq!(four_decimals(0.93124), "0.9312");
        assert_eq!(four_decimals(0.99996), "1.0000");
        assert_eq!(four_decimals(1.0), "1.0000");
        assert_eq!(four_decimals(0.0), "0.0000");
        assert_eq!(four_decimals(87.5), "87.5000");
        assert_eq!(four_decimals(-0.00001), "0.0000");
        assert_eq!(four_decimals(-0.25), "-0.2500");
    }

    #[test]
    fn awkward_county_names_are_quoted_and_read_back_intact() {
        let names = ["Lee, \"Fort Myers\"", "Línea\nDos", " padded "];
        let mut out = Vec::new();
        write_rows(
            &mut out,
            names.iter().map(|county| CsvRow {
                account: "123456789012",
                county,
                window_end: ts("2026-12-02T15:00:00Z"),
                value: 0.5,
            }),
        )
        .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.contains("\"Lee, \"\"Fort Myers\"\"\""), "{text}");
        let series = read_series_from(&out[..], Path::new("x.csv")).unwrap();
        let read: Vec<&str> = series.iter().map(|s| s.county.as_str()).collect();
        assert_eq!(read, names);
        assert_eq!(
            series[0].points,
            vec![(ts("2026-12-02T15:00:00Z").as_second(), 0.5)]
        );
    }

    #[test]
    fn reading_groups_series_and_sorts_points() {
        let text = "account_id,county,timestamp,avg_mvl_metric\n\
                    1,A,2026-12-02T16:00:00Z,0.5\n\
                    1,A,2026-12-02T15:00:00Z,0.25\n\
                    2,A,2026-12-02T15:00:00Z,1\n";
        let series = read_series_from(text.as_bytes(), Path::new("x.csv")).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].points[0].1, 0.25);
        assert_eq!(series[0].points[1].1, 0.5);
        assert_eq!(series[1].account, "2");
    }

    #[test]
    fn bad_csv_names_the_line() {
        let err = read_series_from("a,b\n".as_bytes(), Path::new("x.csv")).unwrap_err();
        assert!(
            err.to_string().starts_with("x.csv:1: the header must be"),
            "{err}"
        );
        let text = "account_id,county,timestamp,avg_mvl_metric\n1,A,2026-12-02T15:00:00Z,0.5\n1,A,noon,0.5\n";
        let err = read_series_from(text.as_bytes(), Path::new("x.csv")).unwrap_err();
        assert!(
            err.to_string().starts_with("x.csv:3: timestamp \"noon\""),
            "{err}"
        );
        let text = "account_id,county,timestamp,avg_mvl_metric\n1,A,2026-12-02T15:00:00Z,lots\n";
        let err = read_series_from(text.as_bytes(), Path::new("x.csv")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x.csv:2: avg_mvl_metric \"lots\""),
            "{err}"
        );
        let text = "account_id,county,timestamp,avg_mvl_metric\n1,A\n";
        let err = read_series_from(text.as_bytes(), Path::new("x.csv")).unwrap_err();
        assert!(err.to_string().starts_with("x.csv:2:"), "{err}");
    }

    #[test]
    fn a_missing_file_is_reported_with_its_path() {
        let err = read_series(Path::new("/nonexistent/m.csv")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/m.csv"), "{err}");
    }
}
