//! `arbor replay` and `arbor btlog`.

use anyhow::{Context, Result};
use arbor_sim::replay::{recording_path, replay_run};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub fn replay(run: &Path, tree: Option<&Path>, json: bool) -> Result<ExitCode> {
    let started = Instant::now();
    let (rec, report) = replay_run(run, tree)?;
    let wall = started.elapsed().as_secs_f64();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("recording {}", rec.path.display());
        println!(
            "tree      {} ({})",
            tree.map(|t| t.display().to_string()).unwrap_or_else(|| rec.tree.name.clone()),
            match (tree.is_some(), report.same_tree) {
                (false, _) => "the recorded tree",
                (true, true) => "another tree with the recorded tree's node layout",
                (true, false) => "another tree",
            }
        );
        println!(
            "replayed  {} of {} ticks, {} engine events compared, in {:.3} s ({:.0} ticks/s)",
            report.ticks_replayed,
            report.ticks_recorded,
            report.events_compared,
            wall,
            if wall > 0.0 { report.ticks_replayed as f64 / wall } else { 0.0 }
        );
        if let Some(t) = &report.truncated {
            println!("truncated {t}: replayed up to the last complete chunk");
        }
        println!(
            "status    recorded {}, replayed {}",
            report.recorded_status.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
            report.replayed_status
        );
        match &report.divergence {
            None => println!("result    IDENTICAL: every transition matches the recording"),
            Some(d) => println!("result    DIVERGES at {d}"),
        }
        if let Some(why) = &report.stopped {
            println!("stopped   {why}");
        }
    }
    Ok(if report.identical() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub fn btlog(run: &Path, output: &Path) -> Result<ExitCode> {
    let path = recording_path(run);
    let rec = arbor_records::recording::Recording::open(&path)?;
    let bytes = arbor_records::groot::btlog(&rec)?;
    std::fs::write(output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    println!("wrote {} ({} bytes, {} transitions)", output.display(), bytes.len(), rec.transitions().count());
    Ok(ExitCode::SUCCESS)
}
