//! `arbor report`: one self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched)
//! over run directories: latency per stage, the tree's node statuses over time, the planner's
//! speed and attempts, success by scenario and goal, and the slowest episodes.

use anyhow::{Context, Result, bail};
use arbor_behaviors::NodeStatus;
use arbor_behaviors::metrics::LatencyHistogram;
use arbor_behaviors::record::TickEvent;
use arbor_records::recording::Recording;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What the report needs of one run directory.
struct Run {
    dir: PathBuf,
    outcome: serde_json::Value,
    timing: Option<serde_json::Value>,
    plan: Option<serde_json::Value>,
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(serde_json::from_str(&t).with_context(|| format!("{}: not JSON", path.display()))?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn fmt_s(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.1} us", s * 1e6)
    }
}

/// p50-p99 bars on a log axis, one row per stage.
fn latency_svg(stages: &BTreeMap<String, LatencyHistogram>) -> String {
    let rows: Vec<_> = stages.iter().filter(|(_, h)| h.count > 0).collect();
    let (w, left, row_h) = (760.0, 130.0, 26.0);
    let h = 40.0 + row_h * rows.len() as f64;
    let (lo, hi) = (1e-7f64, 10.0f64);
    let x = |s: f64| left + (s.clamp(lo, hi).log10() - lo.log10()) / (hi.log10() - lo.log10()) * (w - left - 20.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"latency per stage\">"
    );
    for d in -7..=1 {
        let s = 10f64.powi(d);
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"20\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0:.1}\" y=\"14\" font-size=\"10\" text-anchor=\"middle\">{2}</text>",
            x(s),
            h - 10.0,
            esc(&fmt_s(s))
        );
    }
    for (i, (name, hist)) in rows.iter().enumerate() {
        let y = 30.0 + row_h * i as f64;
        let (p50, p95, p99) = (hist.quantile(0.5), hist.quantile(0.95), hist.quantile(0.99));
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{ty:.1}\" font-size=\"12\">{name}</text>\
             <rect x=\"{a:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"14\" fill=\"#9ecae1\"/>\
             <rect x=\"{b:.1}\" y=\"{y:.1}\" width=\"{cw:.1}\" height=\"14\" fill=\"#3182bd\"/>\
             <line x1=\"{m:.1}\" y1=\"{y0:.1}\" x2=\"{m:.1}\" y2=\"{y1:.1}\" stroke=\"#08306b\" stroke-width=\"2\"/>",
            ty = y + 11.0,
            name = esc(name),
            a = x(p50),
            bw = (x(p95) - x(p50)).max(1.0),
            b = x(p95),
            cw = (x(p99) - x(p95)).max(1.0),
            m = x(p50),
            y0 = y - 2.0,
            y1 = y + 16.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

fn status_color(s: NodeStatus) -> Option<&'static str> {
    match s {
        NodeStatus::Running => Some("#f0ad4e"),
        NodeStatus::Success => Some("#5cb85c"),
        NodeStatus::Failure => Some("#d9534f"),
        NodeStatus::Skipped => Some("#bbbbbb"),
        NodeStatus::Idle => None,
    }
}

/// Node statuses over sim time for one recording: one row per node (the busiest, tree order).
fn timeline_svg(rec: &Recording, max_rows: usize) -> String {
    let mut spans: BTreeMap<&str, Vec<(u64, u64, NodeStatus)>> = BTreeMap::new();
    let mut open: BTreeMap<&str, (u64, NodeStatus)> = BTreeMap::new();
    let end = rec.frames.last().map(|f| f.t_us).unwrap_or(0).max(1);
    let records = rec.frames.iter().flat_map(|f| f.records.iter()).chain(rec.closing_records.iter());
    for r in records {
        if let TickEvent::Transition { node, to, .. } = &r.event {
            if let Some((t0, s)) = open.remove(node.as_str()) {
                spans.entry(node.as_str()).or_default().push((t0, r.t_us, s));
            }
            open.insert(node.as_str(), (r.t_us, *to));
        }
    }
    for (node, (t0, s)) in open {
        spans.entry(node).or_default().push((t0, end, s));
    }
    // Busiest nodes, shown in tree order.
    let mut busy: Vec<(&str, usize)> = spans.iter().map(|(k, v)| (*k, v.len())).collect();
    busy.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let keep: Vec<&str> = busy.iter().take(max_rows).map(|(k, _)| *k).collect();
    let rows: Vec<&arbor_behaviors::NodeInfo> =
        rec.tree.nodes.iter().filter(|n| keep.contains(&n.path.as_str())).collect();
    let (w, left, row_h) = (960.0, 300.0, 16.0);
    let h = 30.0 + row_h * rows.len() as f64;
    let x = |t: u64| left + t as f64 / end as f64 * (w - left - 10.0);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"node statuses over time\">"
    );
    for k in 0..=10 {
        let t = end / 10 * k;
        let _ = write!(
            svg,
            "<line x1=\"{0:.1}\" y1=\"16\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"#eee\"/><text x=\"{0:.1}\" y=\"12\" font-size=\"10\" text-anchor=\"middle\">{2:.0} s</text>",
            x(t),
            h,
            t as f64 / 1e6
        );
    }
    for (i, n) in rows.iter().enumerate() {
        let y = 20.0 + row_h * i as f64;
        let label = n.name.clone().unwrap_or_else(|| n.path.rsplit('/').next().unwrap_or(&n.path).to_string());
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"11\"><title>{}</title>{}</text>",
            y + 11.0,
            esc(&n.path),
            esc(&label)
        );
        for (t0, t1, s) in spans.get(n.path.as_str()).map(Vec::as_slice).unwrap_or_default() {
            if let Some(c) = status_color(*s) {
                let _ = write!(
                    svg,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"{c}\"/>",
                    x(*t0),
                    y + 1.0,
                    (x(*t1) - x(*t0)).max(0.8)
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars with labels and values (0..max).
fn bars_svg(items: &[(String, f64, String)], max: f64, color: &str) -> String {
    let (w, left, row_h) = (760.0, 330.0, 20.0);
    let h = 10.0 + row_h * items.len() as f64;
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" role=\"img\">");
    for (i, (label, v, text)) in items.iter().enumerate() {
        let y = 5.0 + row_h * i as f64;
        let bw = if max > 0.0 { v / max * (w - left - 80.0) } else { 0.0 };
        let _ = write!(
            svg,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"11\">{}</text><rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"14\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
            y + 11.0,
            esc(label),
            bw.max(0.5),
            left + bw + 4.0,
            y + 11.0,
            esc(text)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn s(v: &serde_json::Value, k: &str) -> String {
    v[k].as_str().map(str::to_string).unwrap_or_else(|| v[k].to_string())
}

pub fn report(inputs: &[PathBuf], output: &Path) -> Result<ExitCode> {
    let mut dirs = Vec::new();
    for p in inputs {
        crate::runs::find_runs(p, "outcome.json", &mut dirs)?;
    }
    if dirs.is_empty() {
        bail!("no run directories (with outcome.json) under {inputs:?}");
    }
    // A run whose files cannot be read is named and left out; the report covers the others.
    let (runs, skipped) = crate::runs::read_each(&dirs, |d| {
        let outcome =
            read_json(&d.join("outcome.json"))?.with_context(|| format!("{}: no outcome.json", d.display()))?;
        Ok(Run {
            dir: d.to_path_buf(),
            outcome,
            timing: read_json(&d.join("timing.json"))?,
            plan: read_json(&d.join("plan.json"))?,
        })
    })?;

    // Latency per stage, merged over runs.
    let mut stages: BTreeMap<String, LatencyHistogram> = BTreeMap::new();
    for r in &runs {
        if let Some(lat) = r.timing.as_ref().and_then(|t| t["latency"].as_object()) {
            for (stage, v) in lat {
                if let Ok(h) = serde_json::from_value::<LatencyHistogram>(v["histogram"].clone()) {
                    stages.entry(stage.clone()).or_default().merge(&h);
                }
            }
        }
    }
    let n = runs.len();
    let ok = runs.iter().filter(|r| r.outcome["outcome"] == "success").count();
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>arbor report</title>\
         <style>body{{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}}table{{border-collapse:collapse;margin:8px 0}}\
         td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}}th{{background:#f4f4f4}}\
         h2{{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}}.legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}</style>\
         </head><body><h1>arbor report</h1><p>{n} run(s), {ok} succeeded ({:.0} %).</p>",
        ok as f64 * 100.0 / n as f64
    );

    html.push_str("<h2>Latency per stage</h2><p>Wall time per call, all runs merged: light bar p50 to p95, dark bar p95 to p99, line at p50 (log scale).</p>");
    if stages.values().all(|h| h.count == 0) {
        html.push_str("<p>No latency data (runs without timing.json).</p>");
    } else {
        html.push_str(&latency_svg(&stages));
        html.push_str(
            "<table><tr><th>stage</th><th>calls</th><th>mean</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>",
        );
        for (stage, h) in stages.iter().filter(|(_, h)| h.count > 0) {
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(stage),
                h.count,
                fmt_s(h.mean()),
                fmt_s(h.quantile(0.5)),
                fmt_s(h.quantile(0.95)),
                fmt_s(h.quantile(0.99)),
                fmt_s(h.max_s)
            );
        }
        html.push_str("</table>");
    }

    // Timeline of the first run with a recording.
    html.push_str("<h2>Tree timeline</h2>");
    match runs.iter().find_map(|r| Recording::open(&r.dir.join("run.mcap")).ok().map(|rec| (r, rec))) {
        Some((r, rec)) => {
            let _ = write!(
                html,
                "<p>{} ({}, seed {}): node statuses over sim time, the 40 busiest nodes in tree order.</p>\
                 <p class=\"legend\"><span style=\"background:#f0ad4e\"></span>running<span style=\"background:#5cb85c\"></span>success\
                 <span style=\"background:#d9534f\"></span>failure<span style=\"background:#bbbbbb\"></span>skipped</p>",
                esc(&r.dir.display().to_string()),
                esc(&s(&r.outcome, "tree")),
                s(&r.outcome, "seed")
            );
            html.push_str(&timeline_svg(&rec, 40));
        }
        None => html.push_str("<p>No run with a readable run.mcap.</p>"),
    }

    // Planner.
    html.push_str("<h2>Planner</h2>");
    let planned: Vec<&Run> = runs.iter().filter(|r| r.plan.is_some()).collect();
    if planned.is_empty() {
        html.push_str("<p>No planned runs (all trees were given).</p>");
    } else {
        let items: Vec<(String, f64, String)> = planned
            .iter()
            .map(|r| {
                let t = r.timing.as_ref().map(|t| t["plan"].clone()).unwrap_or_default();
                let tps = t["tokens_per_s"].as_f64().unwrap_or(0.0);
                let attempts = r.plan.as_ref().map(|p| p["attempts"].as_u64().unwrap_or(0)).unwrap_or(0);
                (
                    format!(
                        "{} ({})",
                        s(&r.outcome, "goal"),
                        r.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                    ),
                    tps,
                    format!(
                        "{tps:.1} tok/s, {attempts} attempt(s), first token {}",
                        fmt_s(t["time_to_first_token_s"].as_f64().unwrap_or(0.0))
                    ),
                )
            })
            .collect();
        let max = items.iter().map(|i| i.1).fold(0.0, f64::max);
        html.push_str(&bars_svg(&items, max, "#756bb1"));
    }

    // Success by scenario and goal.
    html.push_str("<h2>Success by scenario and goal</h2>");
    let mut by: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
    for r in &runs {
        let e = by.entry((s(&r.outcome, "scenario"), s(&r.outcome, "goal"))).or_default();
        e.1 += 1;
        e.0 += usize::from(r.outcome["outcome"] == "success");
    }
    let items: Vec<(String, f64, String)> =
        by.iter().map(|((sc, g), (k, t))| (format!("{sc}: {g}"), *k as f64 / *t as f64, format!("{k}/{t}"))).collect();
    html.push_str(&bars_svg(&items, 1.0, "#31a354"));

    // Slowest episodes.
    html.push_str("<h2>Slowest episodes</h2><table><tr><th>run</th><th>goal</th><th>outcome</th><th>sim time</th><th>ticks</th><th>wall time</th></tr>");
    let mut order: Vec<&Run> = runs.iter().collect();
    let wall = |r: &Run| r.timing.as_ref().and_then(|t| t["wall_time_s"].as_f64()).unwrap_or(0.0);
    order.sort_by(|a, b| wall(b).total_cmp(&wall(a)));
    for r in order.iter().take(10) {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td><td>{}</td></tr>",
            esc(&r.dir.display().to_string()),
            esc(&s(&r.outcome, "goal")),
            esc(&s(&r.outcome, "outcome")),
            r.outcome["sim_time_s"].as_f64().unwrap_or(0.0),
            s(&r.outcome, "ticks"),
            fmt_s(wall(r))
        );
    }
    html.push_str("</table></body></html>\n");
    std::fs::write(output, &html).with_context(|| format!("writing {}", output.display()))?;
    println!("wrote {} ({} runs, {} KB)", output.display(), n, html.len() / 1024);
    if skipped > 0 {
        eprintln!("{skipped} run(s) left out: their files could not be read (above)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
