//! `arbor fleet flush`, `arbor agent` and `arbor collect`, and the `--fleet` option of `arbor sim`.

use crate::fleet::{self, BrokerConfig, Episode, FleetConfig, Outbox, RemoteGoal};
use crate::plan::PlanArgs;
use anyhow::{Context, Result};
use arbor_sim::runner::LiveOptions;
use arbor_sim::{RunConfig, Scenario};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// After `arbor sim --fleet`: queue the run as an episode and try to deliver the outbox.
pub fn publish_run(cfg: &FleetConfig, run: &Path, timeout_s: f64) -> Result<()> {
    let outbox = Outbox::open(&cfg.state_dir, cfg.max_queue)?;
    let ep = Episode::from_run(&cfg.robot_id, run)?;
    outbox.push(&ep)?;
    let r = fleet::flush(cfg, &outbox, "idle", Duration::from_secs_f64(timeout_s.max(0.0)))?;
    if r.left == 0 {
        println!(
            "fleet     episode {} delivered to {} ({} acknowledged)",
            ep.episode_id, cfg.broker.url, r.acknowledged
        );
    } else {
        println!(
            "fleet     episode {} queued: {} episode(s) wait in {} for {} (sent next time)",
            ep.episode_id,
            r.left,
            cfg.state_dir.display(),
            cfg.broker.url
        );
    }
    Ok(())
}

pub fn flush_cmd(fleet_file: &Path, timeout_s: f64) -> Result<ExitCode> {
    let cfg = FleetConfig::load(fleet_file)?;
    let outbox = Outbox::open(&cfg.state_dir, cfg.max_queue)?;
    let r = fleet::flush(&cfg, &outbox, "idle", Duration::from_secs_f64(timeout_s.max(0.0)))?;
    if let Some(why) = &r.unreachable {
        eprintln!("fleet     could not reach the broker {}: {why}", cfg.broker.url);
    }
    println!(
        "fleet     {} episode(s) acknowledged by {}, {} left in the outbox",
        r.acknowledged, cfg.broker.url, r.left
    );
    Ok(if r.left == 0 && r.unreachable.is_none() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub struct AgentArgs<'a> {
    pub fleet: &'a Path,
    pub scenario: &'a Path,
    pub out_root: &'a Path,
    pub metrics_every_s: f64,
    pub exit_when_idle_s: Option<f64>,
    pub plan: &'a PlanArgs,
}

pub fn agent_cmd(a: &AgentArgs<'_>) -> Result<ExitCode> {
    let cfg = FleetConfig::load(a.fleet)?;
    let outbox = Outbox::open(&cfg.state_dir, cfg.max_queue)?;
    let scenario_text =
        std::fs::read_to_string(a.scenario).with_context(|| format!("reading scenario {}", a.scenario.display()))?;
    let scenario = Scenario::parse(&scenario_text, &a.scenario.display().to_string())?;
    #[derive(Default)]
    struct Stats {
        runs: u64,
        successes: u64,
        last_outcome: String,
    }
    let stats = std::cell::RefCell::new(Stats::default());
    println!("agent     {} on {} (outbox {})", cfg.robot_id, cfg.broker.url, cfg.state_dir.display());
    let run_goal = |g: &RemoteGoal| -> Result<Option<PathBuf>> {
        let seed = g.seed.unwrap_or(1);
        let (mut tree, source, author, plan, plan_timing) = match &g.tree {
            Some(yaml) => {
                let t = arbor_behaviors::yaml::parse(yaml, "<remote tree>")?;
                (t, "<remote tree>".to_string(), "remote".to_string(), None, None)
            }
            None => {
                let p = crate::plan::plan(&g.goal, &scenario, seed, a.plan)?;
                (p.tree.tree().clone(), "<planner>".to_string(), p.model.clone(), Some(p.record()), Some(p.timing()))
            }
        };
        tree.goal = Some(g.goal.clone());
        let n = stats.borrow().runs;
        let id = arbor_records::dataset::sha256_hex(&format!("{}\n{seed}", g.goal))[..12].to_string();
        let out = a.out_root.join(format!("goal-{n:06}-{id}"));
        let run_cfg = RunConfig {
            scenario: scenario.clone(),
            scenario_text: scenario_text.clone(),
            tree,
            tree_source: source,
            tree_author: author,
            seed,
            out_dir: out.clone(),
            plan,
            live: LiveOptions::default(),
            perception: Default::default(),
        };
        let started = Instant::now();
        let (summary, latencies) = arbor_sim::runner::run_timed(&run_cfg)?;
        crate::timing::write(&out, &summary, &latencies, plan_timing.as_ref(), started.elapsed().as_secs_f64())?;
        let mut st = stats.borrow_mut();
        st.runs += 1;
        st.successes += u64::from(summary.outcome == arbor_sim::runner::Outcome::Success);
        st.last_outcome = summary.outcome.to_string();
        println!("goal      '{}' -> {} ({})", g.goal, summary.outcome, out.display());
        Ok(Some(out))
    };
    let metrics = || {
        let st = stats.borrow();
        serde_json::json!({
            "robot": cfg.robot_id, "runs": st.runs, "successes": st.successes, "last_outcome": st.last_outcome,
        })
    };
    fleet::agent_loop(
        &cfg,
        &outbox,
        Duration::from_secs_f64(a.metrics_every_s.max(0.5)),
        a.exit_when_idle_s.map(Duration::from_secs_f64),
        &fleet::LoopControl::default(),
        run_goal,
        metrics,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub struct CollectArgs<'a> {
    pub broker: BrokerConfig,
    pub client_id: &'a str,
    pub out: &'a Path,
    pub exit_after: Option<u64>,
    pub idle_exit_s: Option<f64>,
}

pub fn collect_cmd(a: &CollectArgs<'_>) -> Result<ExitCode> {
    println!("collect   arbor/+/episodes from {} into {}", a.broker.url, a.out.display());
    let r = fleet::collect(&a.broker, a.client_id, a.out, |r, idle| {
        a.exit_after.is_some_and(|n| r.written >= n) || a.idle_exit_s.is_some_and(|s| idle.as_secs_f64() >= s)
    })?;
    println!(
        "collected {} episode(s): {} received, {} duplicates dropped, {} invalid",
        r.written, r.received, r.duplicates, r.invalid
    );
    if let Some(why) = &r.unreachable {
        eprintln!("collect   the broker {} was unreachable when collecting stopped: {why}", a.broker.url);
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `arbor fleet-bench`: J simulated robots publish N episodes each (copies of one real run with
/// distinct ids) through the broker to a collector; episodes/s from the first publish to the
/// last episode on the collector's disk.
pub fn bench_cmd(broker: &str, robots: usize, per_robot: usize, run: &Path) -> Result<ExitCode> {
    let base = Episode::from_run("bench", run)?;
    let dir = std::env::temp_dir().join(format!("arbor-fleet-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let broker_cfg = BrokerConfig { url: broker.to_string(), ..BrokerConfig::default() };
    let total = (robots * per_robot) as u64;
    let mut cfgs = Vec::new();
    for r in 0..robots {
        let cfg = FleetConfig {
            robot_id: format!("bench-{r}"),
            broker: broker_cfg.clone(),
            state_dir: dir.join(format!("robot-{r}")),
            max_queue: per_robot + 1,
        };
        let outbox = Outbox::open(&cfg.state_dir, cfg.max_queue)?;
        for i in 0..per_robot {
            let mut ep = base.clone();
            ep.robot_id = cfg.robot_id.clone();
            ep.episode_id = format!("{}-{r:03}-{i:06}", &base.episode_id[..12]);
            outbox.push(&ep)?;
        }
        cfgs.push((cfg, outbox));
    }
    let bytes = serde_json::to_vec(&base)?.len();
    let out = dir.join("collected");
    let client_id = format!("arbor-bench-collector-{}", std::process::id());
    let started = Instant::now();
    let collected = std::thread::scope(|s| -> Result<fleet::CollectReport> {
        let col = s.spawn(|| {
            fleet::collect(&broker_cfg, &client_id, &out, |r, idle| {
                r.written >= total || idle > Duration::from_secs(30)
            })
        });
        // Let the collector subscribe before the robots start.
        std::thread::sleep(Duration::from_millis(300));
        let publishers: Vec<_> = cfgs
            .iter()
            .map(|(cfg, outbox)| s.spawn(move || fleet::flush(cfg, outbox, "bench", Duration::from_secs(120))))
            .collect();
        for p in publishers {
            p.join().map_err(|_| anyhow::anyhow!("a publisher panicked"))??;
        }
        col.join().map_err(|_| anyhow::anyhow!("the collector panicked"))?
    })?;
    let secs = started.elapsed().as_secs_f64() - 0.3;
    println!(
        "fleet-bench {robots} robot(s) x {per_robot} episodes ({bytes} bytes each) via {broker}: {} written, {} duplicates, {:.2} s, {:.0} episodes/s, {:.1} MB/s",
        collected.written,
        collected.duplicates,
        secs,
        collected.written as f64 / secs,
        collected.written as f64 * bytes as f64 / secs / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(if collected.written == total { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
