//! The chart: completeness over time, one line per account and county, as a 300-DPI PNG.
//!
//! Rendered with plotters into an RGB buffer, text drawn with ab_glyph from the DejaVu font that the
//! `dejavu` crate ships (no system fonts, no fontconfig), encoded with the `png` crate, which writes
//! the pHYs chunk that tells viewers and printers it is 300 DPI.
//!
//! A legend of a few dozen lines is readable; one of thousands is not. Up to [`MAX_LEGEND_SERIES`]
//! series each get a colour and a legend entry. Beyond that every series is drawn in grey (beyond
//! [`MAX_GREY_LINES`], bands of the spread across series replace the grey lines), the median across
//! series in black, and the series with the lowest average are picked out in colour and named, since
//! the failing counties are what an operator looks for. The 0.8 failure threshold is always drawn.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::output::{Existing, OutputError, write_atomically};

/// 16 x 8 inches at 300 DPI.
pub const DPI: u32 = 300;
pub const WIDTH: u32 = 16 * DPI;
pub const HEIGHT: u32 = 8 * DPI;
/// Series drawn individually, each with a legend entry.
pub const MAX_LEGEND_SERIES: usize = 24;
/// Below this, a validation fails.
pub const THRESHOLD: f64 = 0.8;
/// Up to this many series, a crowded chart draws each one as a thin grey line; beyond, it draws bands.
pub const MAX_GREY_LINES: usize = 400;
/// In a crowded chart, how many of the lowest series are named.
const HIGHLIGHTED: usize = 8;
const FONT: &str = "sans-serif";

/// One line: an account's county over time, as (window end in Unix seconds, value).
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub account: String,
    pub county: String,
    pub points: Vec<(i64, f64)>,
}

impl Series {
    fn label(&self) -> String {
        format!("{} / {}", self.account, self.county)
    }

    fn mean(&self) -> f64 {
        if self.points.is_empty() {
            return f64::INFINITY;
        }
        self.points.iter().map(|p| p.1).sum::<f64>() / self.points.len() as f64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot draw the chart: {0}")]
    Draw(String),
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Points at 300 DPI to pixels.
fn px(points: f64) -> i32 {
    (points * f64::from(DPI) / 72.0).round() as i32
}

fn register_fonts() {
    static FONTS: Once = Once::new();
    FONTS.call_once(|| {
        // The bytes are a valid TTF shipped by the dejavu crate; if registration ever failed, plotters
        // would report a font error when drawing text, which we surface as ChartError.
        let _ = register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Renders `series` and writes the PNG atomically to `path`.
pub fn write_png(
    path: &Path,
    existing: Existing,
    series: &[Series],
    title: &str,
) -> Result<(), ChartError> {
    let pixels = render(series, title)?;
    write_atomically(path, existing, |out| encode_png(out, &pixels))?;
    Ok(())
}

/// Encodes an RGB buffer of WIDTH x HEIGHT as PNG with a 300-DPI pHYs chunk.
fn encode_png<W: Write>(out: W, pixels: &[u8]) -> io::Result<()> {
    let mut encoder = png::Encoder::new(out, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Fast compression: the chart is mostly flat colour, and the default level triples encode time
    // for a few percent of size.
    encoder.set_compression(png::Compression::Fast);
    // 300 dots per inch = 11811 per metre (pHYs has no inch unit).
    let ppm = (f64::from(DPI) / 0.0254).round() as u32;
    encoder.set_pixel_dims(Some(png::PixelDimensions {
        xppu: ppm,
        yppu: ppm,
        unit: png::Unit::Meter,
    }));
    let mut writer = encoder.write_header().map_err(io::Error::other)?;
    writer.write_image_data(pixels).map_err(io::Error::other)?;
    writer.finish().map_err(io::Error::other)
}

/// Renders the chart into an RGB buffer.
pub fn render(series: &[Series], title: &str) -> Result<Vec<u8>, ChartError> {
    register_fonts();
    let mut pixels = vec![255u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, series, title).map_err(|e| ChartError::Draw(e.to_string()))?;
        root.present()
            .map_err(|e| ChartError::Draw(e.to_string()))?;
    }
    Ok(pixels)
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    series: &[Series],
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.margin(px(8.0), px(8.0), px(8.0), px(8.0));
    let root = root.titled(title, (FONT, px(16.0)).into_font().style(FontStyle::Bold))?;
    let points = series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max) = (i64::MAX, i64::MIN);
    // The threshold and 1.0 are always in view; below that the axis follows the data.
    let (mut y_min, mut y_max) = (THRESHOLD, 1.0f64);
    for &(x, y) in points {
        x_min = x_min.min(x);
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if x_min > x_max {
        root.draw(&Text::new(
            "No data in this range",
            (px(300.0), px(200.0)),
            (FONT, px(20.0)),
        ))?;
        return Ok(());
    }
    if x_min == x_max {
        x_min -= 1800;
        x_max += 1800;
    }
    let pad = (y_max - y_min) * 0.04;
    let ticks = time_ticks(x_min, x_max);
    let step = ticks
        .get(1)
        .zip(ticks.first())
        .map(|(b, a)| b - a)
        .unwrap_or(3600);
    let format = if step >= 86_400 {
        "%m-%d"
    } else if x_max - x_min > 86_400 {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    };

    let legend_width = px(300.0);
    let (plot_area, legend_area) = root.split_horizontally(WIDTH as i32 - px(16.0) - legend_width);
    let mut chart = ChartBuilder::on(&plot_area)
        .margin_right(px(12.0))
        .x_label_area_size(px(42.0))
        .y_label_area_size(px(58.0))
        .build_cartesian_2d(
            (x_min..x_max).with_key_points(ticks),
            (y_min - pad)..(y_max + pad),
        )?;
    let time_label = |x: &i64| {
        jiff::Timestamp::from_second(*x)
            .map(|t| t.strftime(format).to_string())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .x_labels(12)
        .y_labels(11)
        .x_label_formatter(&time_label)
        .y_label_formatter(&|y| format!("{y:.2}"))
        .x_desc("Window end (UTC)")
        .y_desc("Average global completeness")
        .label_style((FONT, px(10.0)))
        .axis_desc_style((FONT, px(12.0)))
        .bold_line_style(RGBColor(215, 215, 215).stroke_width(px(0.6) as u32))
        .light_line_style(RGBColor(240, 240, 240))
        .axis_style(BLACK.stroke_width(px(0.8) as u32))
        .draw()?;

    let mut legend: Vec<(String, RGBColor, bool)> = Vec::new();
    let line_width = px(1.2) as u32;
    let marker = px(2.2) as u32;
    if series.len() <= MAX_LEGEND_SERIES {
        for (i, s) in series.iter().enumerate() {
            let color = color(i);
            draw_line(&mut chart, s, color, line_width, marker)?;
            legend.push((s.label(), color, true));
        }
    } else {
        let spread = distribution(series);
        let grey = RGBColor(200, 200, 200);
        if series.len() <= MAX_GREY_LINES {
            for s in series {
                chart.draw_series(std::iter::once(PathElement::new(s.points.clone(), grey)))?;
            }
            legend.push((format!("each of the {} series", series.len()), grey, false));
        } else {
            // Thousands of lines would only paint a grey block (and cost seconds): show the
            // spread across series at each time instead.
            let outer = RGBColor(225, 229, 236);
            let inner = RGBColor(184, 194, 212);
            chart.draw_series(std::iter::once(band(&spread, |q| (q.min, q.max), outer)))?;
            chart.draw_series(std::iter::once(band(&spread, |q| (q.p10, q.p90), inner)))?;
            legend.push((
                format!("min to max of {} series", series.len()),
                outer,
                false,
            ));
            legend.push(("10th to 90th percentile".to_string(), inner, false));
        }
        chart.draw_series(std::iter::once(PathElement::new(
            spread
                .iter()
                .map(|(x, q)| (*x, q.median))
                .collect::<Vec<_>>(),
            BLACK.stroke_width(px(2.0) as u32),
        )))?;
        legend.push((format!("median of {} series", series.len()), BLACK, false));
        let mut lowest: Vec<(f64, &Series)> = series.iter().map(|s| (s.mean(), s)).collect();
        lowest.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (i, (mean, s)) in lowest.iter().take(HIGHLIGHTED).enumerate() {
            let color = color(i);
            draw_line(&mut chart, s, color, line_width, marker)?;
            legend.push((format!("{mean:.3}  {}", s.label()), color, true));
        }
    }
    let red = RGBColor(214, 39, 40);
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(x_min, THRESHOLD), (x_max, THRESHOLD)],
        red.stroke_width(px(1.0) as u32),
    )))?;
    legend.push((format!("failing below {THRESHOLD}"), red, false));

    let heading = if series.len() <= MAX_LEGEND_SERIES {
        "Account / county".to_string()
    } else {
        format!(
            "Mean  account / county ({} lowest)",
            HIGHLIGHTED.min(series.len())
        )
    };
    draw_legend(&legend_area, &heading, &legend)?;
    Ok(())
}

fn draw_line<DB, X, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<X, Y>>,
    series: &Series,
    color: RGBColor,
    width: u32,
    marker: u32,
) -> DrawResult
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = i64>,
    Y: Ranged<ValueType = f64>,
{
    chart.draw_series(std::iter::once(PathElement::new(
        series.points.clone(),
        color.stroke_width(width),
    )))?;
    chart.draw_series(
        series
            .points
            .iter()
            .map(|&p| Circle::new(p, marker, color.filled())),
    )?;
    Ok(())
}

/// Tick positions on whole units of time (15 min ... 30 days), about 5 to 11 of them.
fn time_ticks(x_min: i64, x_max: i64) -> Vec<i64> {
    const STEPS: [i64; 12] = [
        900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 1_209_600,
        2_592_000,
    ];
    let span = (x_max - x_min).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 10)
        .unwrap_or(2_592_000);
    let mut first = x_min.div_euclid(step) * step;
    if first < x_min {
        first += step;
    }
    (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= x_max)
        .collect()
}

/// The spread of values across series at one time.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Quantiles {
    min: f64,
    p10: f64,
    median: f64,
    p90: f64,
    max: f64,
}

/// The spread across series at every time that has data.
fn distribution(series: &[Series]) -> Vec<(i64, Quantiles)> {
    let mut at: BTreeMap<i64, Vec<f64>> = BTreeMap::new();
    for s in series {
        for &(x, y) in &s.points {
            at.entry(x).or_default().push(y);
        }
    }
    at.into_iter()
        .filter(|(_, ys)| !ys.is_empty())
        .map(|(x, mut ys)| {
            ys.sort_by(f64::total_cmp);
            (
                x,
                Quantiles {
                    min: ys[0],
                    p10: quantile(&ys, 0.1),
                    median: quantile(&ys, 0.5),
                    p90: quantile(&ys, 0.9),
                    max: ys[ys.len() - 1],
                },
            )
        })
        .collect()
}

/// Linear interpolation between closest ranks (numpy's default) on sorted, non-empty `ys`.
fn quantile(ys: &[f64], q: f64) -> f64 {
    let rank = q * (ys.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    ys[lo] + (ys[hi] - ys[lo]) * (rank - lo as f64)
}

/// A filled band between two quantiles over time.
fn band(
    spread: &[(i64, Quantiles)],
    edges: impl Fn(&Quantiles) -> (f64, f64),
    color: RGBColor,
) -> Polygon<(i64, f64)> {
    let upper = spread.iter().map(|(x, q)| (*x, edges(q).1));
    let lower = spread.iter().rev().map(|(x, q)| (*x, edges(q).0));
    Polygon::new(upper.chain(lower).collect::<Vec<_>>(), color.filled())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    heading: &str,
    entries: &[(String, RGBColor, bool)],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let font = (FONT, px(8.5)).into_font();
    let row = px(13.0);
    let x0 = px(6.0);
    let mut y = px(40.0);
    area.draw(&Text::new(
        heading.to_string(),
        (x0, y),
        (FONT, px(9.5)).into_font().style(FontStyle::Bold),
    ))?;
    y += row + px(4.0);
    let max_chars = 46;
    for (label, color, marker) in entries {
        let mid = y + row / 2 - px(1.0);
        area.draw(&PathElement::new(
            vec![(x0, mid), (x0 + px(22.0), mid)],
            color.stroke_width(px(1.5) as u32),
        ))?;
        if *marker {
            area.draw(&Circle::new(
                (x0 + px(11.0), mid),
                px(2.2) as u32,
                color.filled(),
            ))?;
        }
        let mut text: String = label.chars().take(max_chars).collect();
        if label.chars().count() > max_chars {
            text.push('…');
        }
        area.draw(&Text::new(text, (x0 + px(28.0), y), font.clone()))?;
        y += row;
    }
    Ok(())
}

/// Distinct colours for up to 24 series (the tab20 palette and four more).
fn color(i: usize) -> RGBColor {
    const COLORS: [(u8, u8, u8); 24] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (174, 199, 232),
        (255, 187, 120),
        (152, 223, 138),
        (197, 176, 213),
        (196, 156, 148),
        (247, 182, 210),
        (199, 199, 199),
        (219, 219, 141),
        (158, 218, 229),
        (0, 0, 128),
        (128, 0, 0),
        (0, 128, 128),
        (128, 128, 0),
        (75, 0, 130),
        (255, 215, 0),
    ];
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(n: usize, points: usize) -> Vec<Series> {
        (0..n)
            .map(|i| Series {
                account: format!("{:012}", 100_000_000_001u64 + (i / 20) as u64),
                county: format!("County {i}"),
                points: (0..points)
                    .map(|h| {
                        (
                            1_764_000_000 + 3600 * h as i64,
                            0.5 + ((i * 7 + h) % 50) as f64 / 100.0,
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// Pixels of the (anti-aliased) grey lines: neutral, between the mesh's and the text's shades.
    fn greyish(pixels: &[u8]) -> usize {
        pixels
            .chunks(3)
            .filter(|p| p[0] == p[1] && p[1] == p[2] && (150..=250).contains(&p[0]))
            .filter(|p| p[0] != 215 && p[0] != 240)
            .count()
    }

    fn png_of(series: &[Series]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        write_png(&path, Existing::Keep, series, "MVL completeness").unwrap();
        std::fs::read(path).unwrap()
    }

    fn decode(bytes: &[u8]) -> (png::OutputInfo, Option<png::PixelDimensions>, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let dims = reader.info().pixel_dims;
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        (info, dims, buf)
    }

    #[test]
    fn png_is_16_by_8_inches_at_300_dpi() {
        let (info, dims, _) = decode(&png_of(&series(3, 24)));
        assert_eq!((info.width, info.height), (4800, 2400));
        let dims = dims.expect("pHYs chunk");
        assert_eq!(dims.unit, png::Unit::Meter);
        let dpi = f64::from(dims.xppu) * 0.0254;
        assert!((dpi - 300.0).abs() < 0.01, "{dpi}");
        assert_eq!(dims.xppu, dims.yppu);
    }

    #[test]
    fn series_are_drawn_in_their_colours_on_white() {
        let (_, _, pixels) = decode(&png_of(&series(3, 24)));
        let has = |rgb: (u8, u8, u8)| pixels.chunks(3).any(|p| (p[0], p[1], p[2]) == rgb);
        assert!(has((255, 255, 255)));
        assert!(has((31, 119, 180)), "first series colour");
        assert!(has((44, 160, 44)), "third series colour");
        assert!(has((214, 39, 40)), "threshold line");
        // Text was rendered: dark anti-aliased glyph pixels exist besides lines.
        assert!(
            pixels
                .chunks(3)
                .filter(|p| p[0] < 60 && p[1] < 60 && p[2] < 60)
                .count()
                > 1000
        );
    }

    #[test]
    fn crowded_charts_highlight_the_lowest_series_and_grey_the_rest() {
        let (_, _, pixels) = decode(&png_of(&series(200, 24)));
        let has = |rgb: (u8, u8, u8)| pixels.chunks(3).any(|p| (p[0], p[1], p[2]) == rgb);
        let grey = greyish(&pixels);
        assert!(grey > 100_000, "grey background series: {grey} pixels");
        assert!(has((31, 119, 180)), "highlighted series");
        // A colour beyond the highlighted eight is not used.
        assert!(!has((23, 190, 207)));
    }

    #[test]
    fn empty_data_still_gives_a_valid_chart() {
        let (info, _, _) = decode(&png_of(&[]));
        assert_eq!(info.width, 4800);
    }

    #[test]
    fn time_ticks_fall_on_whole_hours_and_days() {
        let hour = 3600;
        let base = 1_764_000_000 - 1_764_000_000 % 86_400;
        // 24 h: every 3 h, on the hour.
        let ticks = time_ticks(base + 1800, base + 1800 + 24 * hour);
        assert_eq!(ticks[0], base + 3 * hour);
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == 3 * hour));
        assert_eq!(ticks.len(), 8);
        // 12 days: every 2 days, at midnight.
        let ticks = time_ticks(base, base + 288 * hour);
        assert!(ticks.iter().all(|t| t % 86_400 == 0));
        assert_eq!(ticks.len(), 7);
        // A tiny span still gets a tick.
        assert_eq!(time_ticks(base, base + 60), vec![base]);
    }

    #[test]
    fn distribution_gives_median_and_percentiles_per_time() {
        let s = |v: &[(i64, f64)]| Series {
            account: "a".into(),
            county: "c".into(),
            points: v.to_vec(),
        };
        let d = distribution(&[
            s(&[(1, 0.1), (2, 0.4)]),
            s(&[(1, 0.3), (2, 0.6)]),
            s(&[(1, 0.2)]),
        ]);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0, 1);
        assert_eq!(d[0].1.median, 0.2);
        assert_eq!((d[0].1.min, d[0].1.max), (0.1, 0.3));
        assert!((d[0].1.p10 - 0.12).abs() < 1e-12, "{:?}", d[0]);
        assert!((d[0].1.p90 - 0.28).abs() < 1e-12, "{:?}", d[0]);
        assert!((d[1].1.median - 0.5).abs() < 1e-12);
    }

    #[test]
    fn thousands_of_series_are_drawn_as_bands() {
        let (_, _, pixels) = decode(&png_of(&series(1000, 24)));
        let has = |rgb: (u8, u8, u8)| pixels.chunks(3).any(|p| (p[0], p[1], p[2]) == rgb);
        assert!(has((184, 194, 212)), "10-90 band");
        assert!(has((225, 229, 236)), "min-max band");
        let grey = greyish(&pixels);
        assert!(grey < 20_000, "no grey lines, but {grey} grey pixels");
        assert!(has((31, 119, 180)), "highlighted series");
    }
}
