//! Results as a markdown table, a CSV and SVG plots.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

/// One measured row.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Scenario.
    pub scenario: String,
    /// Agent measured.
    pub agent: String,
    /// Target rate (lines or events per second), 0 for "as fast as it goes".
    pub rate: u64,
    /// Delivered per second.
    pub delivered_per_s: f64,
    /// MB/s delivered (when known).
    pub mb_per_s: f64,
    /// CPU % of one core.
    pub cpu: f64,
    /// Peak RSS, MiB.
    pub peak_rss: f64,
    /// Steady RSS, MiB.
    pub steady_rss: f64,
    /// Latency p50, ms.
    pub p50_ms: f64,
    /// Latency p99, ms.
    pub p99_ms: f64,
    /// Written / delivered, as counted.
    pub written: u64,
    /// Delivered events.
    pub delivered: u64,
    /// Free text (reference figures).
    pub note: String,
}

impl Row {
    /// The target rate, or `max` for "as fast as it goes".
    pub fn rate_label(&self) -> String {
        if self.rate == 0 {
            "max".to_owned()
        } else {
            self.rate.to_string()
        }
    }
}

/// The markdown table.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | agent | rate/s | delivered/s | MB/s | CPU % | peak RSS MiB | steady RSS MiB | p50 ms | p99 ms | written | delivered | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let rate = r.rate_label();
        let _ = writeln!(
            out,
            "| {} | {} | {rate} | {:.0} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |",
            r.scenario,
            r.agent,
            r.delivered_per_s,
            r.mb_per_s,
            r.cpu,
            r.peak_rss,
            r.steady_rss,
            r.p50_ms,
            r.p99_ms,
            r.written,
            r.delivered,
            r.note
        );
    }
    out
}

/// For each scenario (and rate) that hydra and another agent both ran:
/// the other agent's figures divided by hydra's, as a markdown table
/// (`-` where hydra's figure is zero). An empty string with one agent.
pub fn ratios(rows: &[Row]) -> String {
    let mut out = String::new();
    for r in rows.iter().filter(|r| r.agent != "hydra") {
        let Some(h) = rows
            .iter()
            .find(|h| h.agent == "hydra" && h.scenario == r.scenario && h.rate == r.rate)
        else {
            continue;
        };
        if out.is_empty() {
            out.push_str("| scenario | rate/s | agent | delivered/s vs hydra | CPU % vs hydra | peak RSS vs hydra | steady RSS vs hydra |\n|---|---|---|---|---|---|---|\n");
        }
        let ratio = |a: f64, b: f64| {
            if b > 0.0 {
                format!("{:.2}×", a / b)
            } else {
                "-".to_owned()
            }
        };
        let rate = r.rate_label();
        let _ = writeln!(
            out,
            "| {} | {rate} | {} | {} | {} | {} | {} |",
            r.scenario,
            r.agent,
            ratio(r.delivered_per_s, h.delivered_per_s),
            ratio(r.cpu, h.cpu),
            ratio(r.peak_rss, h.peak_rss),
            ratio(r.steady_rss, h.steady_rss),
        );
    }
    out
}

/// The CSV.
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::from(
        "scenario,agent,rate,delivered_per_s,mb_per_s,cpu_percent,peak_rss_mib,steady_rss_mib,p50_ms,p99_ms,written,delivered,note\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{:.1},{:.2},{:.3},{:.2},{:.2},{:.2},{:.2},{},{},\"{}\"",
            r.scenario,
            r.agent,
            r.rate,
            r.delivered_per_s,
            r.mb_per_s,
            r.cpu,
            r.peak_rss,
            r.steady_rss,
            r.p50_ms,
            r.p99_ms,
            r.written,
            r.delivered,
            r.note.replace('"', "'")
        );
    }
    out
}

/// A line plot of `y` against the target rate for the rated scenario,
/// one series per agent.
pub fn plot(
    rows: &[Row],
    path: &Path,
    title: &str,
    y_label: &str,
    y: fn(&Row) -> f64,
) -> Result<(), Box<dyn std::error::Error>> {
    let rated: Vec<&Row> = rows
        .iter()
        .filter(|r| r.scenario == "one_forward" && r.rate > 0)
        .collect();
    if rated.is_empty() {
        return Ok(());
    }
    let max_x = rated.iter().map(|r| r.rate).max().unwrap_or(1) as f64;
    let max_y = rated.iter().map(|r| y(r)).fold(0.0f64, f64::max).max(1e-3) * 1.15;
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1000f64..max_x * 1.05).log_scale(), 0f64..max_y)?;
    chart
        .configure_mesh()
        .x_desc("lines/s written (log)")
        .y_desc(y_label)
        .draw()?;
    let mut agents: Vec<&str> = rated.iter().map(|r| r.agent.as_str()).collect();
    agents.dedup();
    for (i, agent) in agents.iter().enumerate() {
        let color = Palette99::pick(i).mix(0.9);
        let points: Vec<(f64, f64)> = rated
            .iter()
            .filter(|r| r.agent == *agent)
            .map(|r| (r.rate as f64, y(r)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
            .label(*agent)
            .legend(move |(x, y0)| {
                PathElement::new(vec![(x, y0), (x + 20, y0)], color.stroke_width(2))
            });
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
