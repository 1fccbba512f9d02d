//! `chart.svg`: grouped bars at 1 KiB, median latency above and client CPU per operation
//! below, one bar per contender in each operation's group.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::measure::{Op, Summary, fmt_ns};
use crate::report::Report;

const OPS: [Op; 3] = [Op::Get, Op::Set, Op::Delete];
/// Colour-blind-safe (Okabe–Ito).
const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(86, 180, 233),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(213, 94, 0),
    RGBColor(204, 121, 167),
];

pub fn draw(report: &Report, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1100, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (body, footer) = root.split_vertically(970);
    let (top, bottom) = body.split_vertically(485);
    panel(
        report,
        &top,
        "Median latency per operation, 1 KiB values (log scale, lower is better)",
        "median latency",
        |s| s.median_ns,
    )?;
    panel(
        report,
        &bottom,
        "Client CPU time per operation, 1 KiB values (log scale, lower is better)",
        "client CPU time per operation",
        |s| s.cpu_ns_per_op,
    )?;
    footer
        .draw(&Text::new(
            report.footnote(),
            (16, 4),
            ("sans-serif", 13).into_font().color(&BLACK.mix(0.7)),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

/// `50 µs`, `1 ms`, `2.5 ms`.
fn axis_label(us: f64) -> String {
    if us >= 1000.0 {
        format!("{} ms", trim(us / 1000.0))
    } else {
        format!("{} µs", trim(us))
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn panel(
    report: &Report,
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    title: &str,
    y_desc: &str,
    figure: fn(&Summary) -> f64,
) -> Result<()> {
    let err = |e: DrawingAreaErrorKind<_>| anyhow!("{e}");
    // µs, [contender][op]; missing figures are left out.
    let values: Vec<(&str, Vec<Option<f64>>)> = report
        .contenders
        .iter()
        .map(|(id, label)| {
            let row = OPS
                .iter()
                .map(|&op| report.summary(id, op, 1024).map(|s| figure(s) / 1e3))
                .collect();
            (label.as_str(), row)
        })
        .collect();
    let all = || {
        values
            .iter()
            .flat_map(|(_, row)| row.iter().flatten().copied())
    };
    let max = all().fold(1.0_f64, f64::max);
    let min = all().fold(max, f64::min);
    // Whole decades below the smallest bar; headroom above the tallest for its label and
    // for the legend.
    let floor = 10f64.powf((min / 2.0).max(1e-3).log10().floor());
    let top = max * 6.0;

    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(84)
        .build_cartesian_2d(0.0_f64..OPS.len() as f64, (floor..top).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(OPS.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x.fract() - 0.5).abs() < 1e-6 && i < OPS.len() {
                OPS[i].name().to_owned()
            } else {
                String::new()
            }
        })
        .x_label_style(("sans-serif", 18))
        .y_label_formatter(&|y| axis_label(*y))
        .y_desc(y_desc)
        .y_label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(err)?;

    let n = values.len().max(1) as f64;
    let width = 0.84 / n;
    let value_style = TextStyle::from(("sans-serif", 12)).pos(Pos::new(HPos::Center, VPos::Bottom));
    for (j, (label, row)) in values.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let bars = row.iter().enumerate().filter_map(|(i, v)| {
            let v = (*v)?;
            let x0 = i as f64 + 0.08 + j as f64 * width;
            Some(Rectangle::new(
                [(x0 + width * 0.06, floor), (x0 + width * 0.94, v)],
                colour.filled(),
            ))
        });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(*label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour.filled()));
        let labels = row.iter().enumerate().filter_map(|(i, v)| {
            let v = (*v)?;
            let x = i as f64 + 0.08 + (j as f64 + 0.5) * width;
            Some(
                EmptyElement::at((x, v)) + Text::new(fmt_ns(v * 1e3), (0, -3), value_style.clone()),
            )
        });
        chart.draw_series(labels).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    Ok(())
}
