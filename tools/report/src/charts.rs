//! Inline SVG charts for `report.html`, drawn with `plotters`' SVG backend (no fonts or
//! network needed: text is left to the browser).

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Colour of a backend (stable across charts): its `backend.toml` colour, else a palette
/// colour by its position.
pub fn color_of(backend: &str, index: usize) -> RGBColor {
    if let Some((r, g, b)) = crate::looks::Looks::of_repo().rgb(backend) {
        return RGBColor(r, g, b);
    }
    const PALETTE: [RGBColor; 5] = [
        RGBColor(230, 126, 34),
        RGBColor(192, 57, 43),
        RGBColor(22, 160, 133),
        RGBColor(142, 68, 173),
        RGBColor(127, 140, 141),
    ];
    PALETTE[index % PALETTE.len()]
}

const W: u32 = 520;
const H: u32 = 340;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn draw(f: impl FnOnce(&Area) -> Result<(), String>) -> String {
    let mut svg = String::new();
    let result = {
        let backend = SVGBackend::with_string(&mut svg, (W, H));
        let area = backend.into_drawing_area();
        area.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| f(&area))
            .and_then(|_| area.present().map_err(|e| e.to_string()))
    };
    match result {
        Ok(()) => svg,
        Err(e) => format!(
            "<p class=\"warn\">chart could not be drawn: {}</p>",
            escape(&e)
        ),
    }
}

/// The legend of a chart's labelled series, in the corner `position`.
fn draw_legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(|e| e.to_string())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Short axis labels: 1.5k, 2M, 0.25.
fn short(y: f64) -> String {
    let a = y.abs();
    if a >= 1e6 {
        format!("{}M", trim(y / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(y / 1e3))
    } else {
        trim(y)
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn nice_max(x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    x * 1.12
}

/// Lines: one series per backend, x = level.
/// A shaded interval per level for one backend: `(backend, [(level, low, high)])`.
pub type Band = (String, Vec<(u32, f64, f64)>);

/// `bands`, when given, shades an interval per backend and level (e.g. the 95 % CI).
pub fn line_by_level(
    title: &str,
    y_label: &str,
    series: &[(String, Vec<(u32, f64)>)],
    bands: &[Band],
) -> String {
    draw(|area| {
        let max_level = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(l, _)| *l))
            .max()
            .unwrap_or(1)
            .max(2);
        let max_y = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
            .chain(
                bands
                    .iter()
                    .flat_map(|(_, b)| b.iter().map(|(_, _, hi)| *hi)),
            )
            .fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(1u32..max_level, 0.0..nice_max(max_y))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("level")
            .y_desc(y_label)
            .y_label_formatter(&|y| short(*y))
            .x_labels(max_level as usize)
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, band) in bands.iter().filter(|(_, b)| b.len() >= 2) {
            let i = series.iter().position(|(n, _)| n == name).unwrap_or(0);
            let color = color_of(name, i);
            let outline: Vec<(u32, f64)> = band
                .iter()
                .map(|&(l, _, hi)| (l, hi))
                .chain(band.iter().rev().map(|&(l, lo, _)| (l, lo.max(0.0))))
                .collect();
            chart
                .draw_series([Polygon::new(outline, color.mix(0.18).filled())])
                .map_err(|e| e.to_string())?;
        }
        for (i, (name, points)) in series.iter().enumerate() {
            let color = color_of(name, i);
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(3),
                ))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
            chart
                .draw_series(
                    points
                        .iter()
                        .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
                )
                .map_err(|e| e.to_string())?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    })
}

/// One bar group per category, one bar per series inside the group.
/// `groups[i]` names category i; `series[j] = (name, values per category)`.
pub fn grouped_bars(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
    log_scale: bool,
) -> String {
    draw(|area| {
        let n_groups = groups.len().max(1);
        let max_y = series
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0, f64::max);
        let x_range = 0.0..n_groups as f64;
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70);
        if log_scale {
            let min_y = series
                .iter()
                .flat_map(|(_, v)| v.iter().copied())
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min);
            let lo = if min_y.is_finite() {
                10f64.powf(min_y.log10().floor())
            } else {
                1.0
            };
            let mut chart = builder
                .build_cartesian_2d(
                    x_range.clone(),
                    (lo..10f64.powf(max_y.max(lo * 10.0).log10().ceil())).log_scale(),
                )
                .map_err(|e| e.to_string())?;
            // A log axis cannot show 0: bars start at its bottom, zero values are left out.
            draw_bars(
                &mut chart,
                y_label,
                groups,
                series,
                lo,
                SeriesLabelPosition::UpperLeft,
            )
        } else {
            let mut chart = builder
                .build_cartesian_2d(x_range.clone(), 0.0..nice_max(max_y))
                .map_err(|e| e.to_string())?;
            draw_bars(
                &mut chart,
                y_label,
                groups,
                series,
                0.0,
                SeriesLabelPosition::UpperRight,
            )
        }
    })
}

/// The mesh, the bars (rising from `base`) and the legend of [`grouped_bars`] on a linear
/// or a log Y axis. With a `base` above 0 (a log axis) values at or below 0 are not drawn.
fn draw_bars<'a, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<f64>)],
    base: f64,
    legend: SeriesLabelPosition,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let n_groups = groups.len().max(1);
    let n_series = series.len().max(1);
    let bar = |g: usize, s: usize| {
        let width = 0.8 / n_series as f64;
        let x0 = g as f64 + 0.1 + s as f64 * width;
        (x0, x0 + width * 0.92)
    };
    let label_of = |x: &f64| centre_label(groups, *x);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_label_formatter(&label_of)
        .x_labels(2 * n_groups + 1)
        .y_desc(y_label)
        .y_label_formatter(&|y| short(*y))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| e.to_string())?;
    for (s, (name, values)) in series.iter().enumerate() {
        let color = color_of(name, s);
        chart
            .draw_series(
                values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| base <= 0.0 || **v > 0.0)
                    .map(|(g, v)| {
                        let (a, b) = bar(g, s);
                        Rectangle::new([(a, base), (b, *v)], color.filled())
                    }),
            )
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    draw_legend(chart, legend)
}

/// The x-axis label of a bar chart whose category `i` spans `i..i+1`: its name at the
/// centre tick, nothing at the others.
fn centre_label(names: &[String], x: f64) -> String {
    if (x - x.floor() - 0.5).abs() < 1e-6 {
        names.get(x.floor() as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// One stacked bar per category: `parts = [(part name, colour, value per category)]`.
/// `whiskers[c]`, when given, draws an interval (e.g. the 95 % CI of the total) on bar `c`.
pub fn stacked_bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    parts: &[(String, RGBColor, Vec<f64>)],
    whiskers: &[Option<[f64; 2]>],
) -> String {
    draw(|area| {
        let n = categories.len().max(1);
        let totals: Vec<f64> = (0..n)
            .map(|c| {
                parts
                    .iter()
                    .map(|(_, _, v)| v.get(c).copied().unwrap_or(0.0))
                    .sum()
            })
            .collect();
        let max_y = totals
            .iter()
            .copied()
            .chain(whiskers.iter().flatten().map(|w| w[1]))
            .fold(0.0, f64::max);
        let label_of = |x: &f64| centre_label(categories, *x);
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..n as f64, 0.0..nice_max(max_y))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&label_of)
            .x_labels(2 * n + 1)
            .y_desc(y_label)
            .y_label_formatter(&|y| short(*y))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| e.to_string())?;
        let mut base = vec![0.0; n];
        for (name, color, values) in parts {
            let color = *color;
            let rects: Vec<Rectangle<(f64, f64)>> = (0..n)
                .map(|c| {
                    let v = values.get(c).copied().unwrap_or(0.0);
                    let r = Rectangle::new(
                        [(c as f64 + 0.25, base[c]), (c as f64 + 0.75, base[c] + v)],
                        color.filled(),
                    );
                    base[c] += v;
                    r
                })
                .collect();
            chart
                .draw_series(rects)
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        let ink = RGBColor(33, 33, 33).stroke_width(2);
        for (c, w) in whiskers.iter().enumerate() {
            let Some([lo, hi]) = *w else { continue };
            let x = c as f64 + 0.5;
            chart
                .draw_series([
                    PathElement::new(vec![(x, lo.max(0.0)), (x, hi)], ink),
                    PathElement::new(vec![(x - 0.06, hi), (x + 0.06, hi)], ink),
                    PathElement::new(vec![(x - 0.06, lo.max(0.0)), (x + 0.06, lo.max(0.0))], ink),
                ])
                .map_err(|e| e.to_string())?;
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_documents_with_their_labels() {
        let svg = line_by_level(
            "Cumulative cost",
            "USD",
            &[("spacetime".into(), vec![(1, 1.0), (2, 2.5)])],
            &[("spacetime".into(), vec![(1, 0.5, 1.5), (2, 2.0, 3.0)])],
        );
        assert!(svg.contains("<polygon"), "{svg}");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("Cumulative cost"));
        assert!(svg.contains("spacetime"));
        let bars = grouped_bars(
            "Tokens",
            "tokens",
            &["output".into(), "cache read".into()],
            &[("postgres".into(), vec![100.0, 1.0e6])],
            true,
        );
        assert!(bars.contains("<rect"));
        assert!(bars.contains("cache read"));
        let stacked = stacked_bars(
            "Split",
            "USD",
            &["spacetime".into()],
            &[("fixes".into(), RGBColor(200, 0, 0), vec![0.8])],
            &[Some([0.5, 1.1])],
        );
        assert!(stacked.contains("fixes"));
    }
}
