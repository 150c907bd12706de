//! `timing.json`: a run's wall-clock figures (latency per stage, planner speed, real-time
//! factor), kept apart from the deterministic records of the run directory.

use anyhow::{Context, Result};
use arbor_behaviors::metrics::StageLatencies;
use arbor_planner::PlanTiming;
use arbor_sim::RunSummary;
use std::path::Path;

pub fn write(
    out: &Path,
    summary: &RunSummary,
    latencies: &StageLatencies,
    plan: Option<&PlanTiming>,
    wall: f64,
) -> Result<()> {
    let latency: serde_json::Map<String, serde_json::Value> = latencies
        .iter()
        .map(|(stage, h)| {
            let v = serde_json::json!({
                "count": h.count, "mean_s": h.mean(), "p50_s": h.quantile(0.5), "p95_s": h.quantile(0.95),
                "p99_s": h.quantile(0.99), "max_s": h.max_s, "histogram": h,
            });
            (stage.name().to_string(), v)
        })
        .collect();
    let timing = serde_json::json!({
        "latency": latency,
        "plan": plan,
        "wall_time_s": wall,
        "sim_time_s": summary.sim_time_s,
        "real_time_factor": if wall > 0.0 { summary.sim_time_s / wall } else { 0.0 },
        "ticks_per_s": if wall > 0.0 { summary.ticks as f64 / wall } else { 0.0 },
    });
    let path = out.join("timing.json");
    std::fs::write(&path, format!("{timing:#}\n")).with_context(|| format!("writing {}", path.display()))
}
