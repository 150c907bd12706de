//! The `arbor` command line.
//!
//! Over 600 lines: the whole CLI (clap definitions) and its dispatch.

use anyhow::{Context, Result, bail};
use arbor_behaviors::manifest::Backend;
use arbor_behaviors::metrics::{Metrics, Stage};
use arbor_behaviors::{NodeLibrary, SkillKind, SkillManifest, export, load_tree, xml, yaml};
use arbor_sim::runner::LiveOptions;
use arbor_sim::{RunConfig, Scenario};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

mod dataset_cmd;
mod eval_cmd;
mod fleet;
mod fleet_cmd;
mod memory_cmd;
mod metrics_server;
mod perceive_cmd;
mod plan;
mod replay_cmd;
mod report;
mod ros_config;
mod ros_iface;
mod ros_msgdef;
#[cfg(feature = "ros2")]
mod ros_node;
#[cfg(feature = "ros2")]
mod ros_robot;
#[cfg(feature = "ros2")]
mod ros_skills;
mod runs;
mod timing;
mod yaml_file;

#[derive(Parser, Debug)]
#[command(
    name = "arbor",
    version,
    about = "arbor: behavior trees, perception and memory for robots; a built-in simulator runs the whole loop"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run arbor as a ROS 2 node (feature `ros2`): goals in on a topic, skills out over ROS 2.
    /// ROS arguments follow `--ros-args` (remapping `-r`, `--params-file`, `-p`).
    Run {
        /// The node's YAML (map places, people, perception, navigation, out_dir); see
        /// launch/params/node.yaml. Also the ROS parameter `config`.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where run directories go (default: the YAML's out_dir, or ROS parameter `out_dir`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Join the fleet (robot.yaml: robot_id, broker, state_dir): status and metrics over MQTT,
        /// goals from arbor/<robot>/goals, every run's episode queued and sent. Also the ROS
        /// parameter `fleet`.
        #[arg(long)]
        fleet: Option<PathBuf>,
        /// Print every ROS parameter with its default, as a params file, and exit.
        #[arg(long)]
        print_params: bool,
        /// Print the node's topics (parameter, default name, type, direction) as JSON, and exit.
        #[arg(long)]
        print_topics: bool,
        #[command(flatten)]
        plan: plan::PlanArgs,
    },
    /// Run a scenario in the built-in simulator and write a run directory.
    Sim {
        /// Scenario YAML (e.g. sim/scenarios/photographer.yaml).
        #[arg(long)]
        scenario: PathBuf,
        /// Tree to execute (arbor YAML or BT.CPP XML). Without it, the LLM planner writes one
        /// for --goal (or the scenario's goal).
        #[arg(long)]
        tree: Option<PathBuf>,
        /// Goal for the planner (used when no --tree is given).
        #[arg(long)]
        goal: Option<String>,
        /// Seed for everything random in the run (and the planner's sampling).
        #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
        seed: u64,
        /// Run directory to write (created if missing; files of an earlier run are replaced).
        #[arg(long)]
        out: PathBuf,
        /// Print the summary as JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        plan: plan::PlanArgs,
        #[command(flatten)]
        live: LiveArgs,
        #[command(flatten)]
        perception: Box<perceive_cmd::PerceptionArgs>,
        /// Fleet settings (robot id, broker, outbox): the finished run is queued as an episode
        /// and sent to the broker (or kept for next time).
        #[arg(long)]
        fleet: Option<PathBuf>,
        /// Seconds to wait for the broker's acknowledgement of the outbox.
        #[arg(long, default_value_t = 10.0)]
        publish_timeout: f64,
    },
    /// Plan a goal with the local LLM: print the tree (YAML) and the figures.
    Plan {
        /// The goal in plain language.
        goal: String,
        /// Scenario whose places, people and objects the planner may use.
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
        seed: u64,
        /// Write the tree (arbor YAML) to this file.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        #[command(flatten)]
        plan: plan::PlanArgs,
    },
    /// Work with tree files.
    Tree {
        #[command(subcommand)]
        command: TreeCommand,
    },
    /// List the skills a tree can use (the photographer's, or a manifest's), with their ports
    /// and how each backend runs them.
    Skills {
        /// A skill manifest (YAML) instead of the photographer's; it is checked for both backends.
        #[arg(long)]
        skills: Option<PathBuf>,
        /// Print the registry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-execute a run's recording (run directory or .mcap) and check every transition.
    /// Exit 0 when identical, 1 with the first divergence, 2 when the recording is unusable.
    Replay {
        /// Run directory (its run.mcap) or an .mcap file.
        run: PathBuf,
        /// Run this tree against the recorded world instead of the recorded tree.
        #[arg(long)]
        tree: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make fine-tuning datasets from runs: generate episodes, build train/val/preferences.
    Dataset {
        #[command(subcommand)]
        command: dataset_cmd::DatasetCommand,
    },
    /// Query, inspect and prune memory: episodes, facts, retrieval by meaning, forgetting.
    Memory {
        #[command(subcommand)]
        command: memory_cmd::MemoryCommand,
    },
    /// The robot's fleet connection: status, metrics, remote goals (plan + run in the simulator),
    /// episodes from the outbox. Runs until killed (or --exit-when-idle).
    Agent {
        #[arg(long)]
        fleet: PathBuf,
        /// Scenario that remote goals run in.
        #[arg(long)]
        scenario: PathBuf,
        /// Where runs for remote goals are written.
        #[arg(long, default_value = "runs/agent")]
        out_root: PathBuf,
        #[arg(long, default_value_t = 5.0)]
        metrics_every: f64,
        /// Exit after this many seconds without goals once the outbox is empty.
        #[arg(long)]
        exit_when_idle: Option<f64>,
        #[command(flatten)]
        plan: plan::PlanArgs,
    },
    /// Send what waits in a robot's outbox.
    FleetFlush {
        #[arg(long)]
        fleet: PathBuf,
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// Collect the fleet's episodes (arbor/+/episodes, persistent session) into run directories
    /// that `arbor dataset build` reads; each episode once.
    Collect {
        /// mqtt://host:port or mqtts://host:port.
        #[arg(long)]
        broker: String,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// MQTT client id: the broker keeps this session's queue while the collector is away.
        #[arg(long, default_value = "arbor-collector")]
        client_id: String,
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        password: Option<String>,
        /// CA certificate (PEM) for mqtts://.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Exit after writing this many new episodes.
        #[arg(long)]
        exit_after: Option<u64>,
        /// Exit after this many seconds without a message.
        #[arg(long)]
        idle_exit: Option<f64>,
    },
    /// Benchmark: J simulated robots send N episodes each (copies of a run) through the broker
    /// to a collector; prints episodes/s.
    FleetBench {
        #[arg(long)]
        broker: String,
        #[arg(long, default_value_t = 4)]
        robots: usize,
        #[arg(long, default_value_t = 250)]
        episodes: usize,
        /// A finished run directory to copy.
        #[arg(long)]
        run: PathBuf,
    },
    /// Evaluate planners on a suite (sim/suites/*.yaml): task success, valid trees, attempts,
    /// tokens/s, plan latency, one row per model (a GGUF file, or `expert`).
    Eval {
        #[arg(long)]
        suite: PathBuf,
        /// A GGUF model, `<model>+examples` (that model with --examples retrieved as worked
        /// examples), `<model>+no-examples` (a model trained with retrieved examples, planning
        /// without its bank), or `expert` (the scripted expert); repeat for an A/B table.
        #[arg(long = "model-under-test", value_name = "GGUF|expert")]
        models: Vec<String>,
        #[arg(short = 'o', long = "output", default_value = "runs/eval")]
        output: PathBuf,
        #[command(flatten)]
        plan: plan::PlanArgs,
    },
    /// Write one self-contained HTML page over run directories: latency per stage, tree
    /// timeline, planner speed, success by scenario and goal, slowest episodes.
    Report {
        /// Run directories, or directories holding run directories.
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(short = 'o', long = "output", default_value = "report.html")]
        output: PathBuf,
    },
    /// Detect faces (or a configured model's classes) in image files: boxes, scores, landmarks.
    /// Exit 1 when some image could not be read (the others are still processed).
    Perceive(perceive_cmd::PerceiveArgs),
    /// Write a run's recording as a BehaviorTree.CPP FileLogger2 log (.btlog) for Groot2.
    Btlog {
        /// Run directory (its run.mcap) or an .mcap file.
        run: PathBuf,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
}

/// Watching a run live.
#[derive(clap::Args, Debug, Clone)]
struct LiveArgs {
    /// Serve Prometheus metrics on this address while the run goes (e.g. 127.0.0.1:9464;
    /// port 0 picks a free one, printed at start).
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Pace the simulation to this multiple of real time (1 = real time); default: as fast as possible.
    #[arg(long)]
    realtime: Option<f64>,
    /// Keep serving metrics this many seconds after the run ends (for a last scrape).
    #[arg(long, default_value_t = 0.0)]
    linger: f64,
}

#[derive(Subcommand, Debug)]
enum TreeCommand {
    /// Check tree files (arbor YAML or BehaviorTree.CPP XML) against the node library and the
    /// simulator's skills.
    Validate {
        files: Vec<PathBuf>,
        /// Load undeclared nodes as generic actions/conditions/controls, keeping their ports
        /// (for foreign trees such as Nav2's).
        #[arg(long)]
        lenient: bool,
        /// Node manifests (YAML) declaring more node types.
        #[arg(long = "manifest")]
        manifests: Vec<PathBuf>,
        /// Also check that places and entities named in the trees exist in this scenario.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// The robot's skill manifest [default: the scenario's `skills:`, else the photographer's].
        #[arg(long)]
        skills: Option<PathBuf>,
    },
    /// Convert between formats, chosen by extension: .xml (BT.CPP v4) and .yaml/.yml (arbor).
    Convert {
        input: PathBuf,
        output: PathBuf,
        /// Check the tree leniently before writing (undeclared nodes allowed).
        #[arg(long)]
        lenient: bool,
    },
    /// Print a tree as Graphviz DOT (or Mermaid with --mermaid).
    Dot {
        file: PathBuf,
        #[arg(long)]
        mermaid: bool,
    },
}

/// How much faster than real time a run went: "6125x", "2.2x", "0.45x" (never a bare "0x").
fn speed_text(sim_s: f64, wall_s: f64) -> String {
    if wall_s <= 0.0 {
        return "n/a".into();
    }
    let x = sim_s / wall_s;
    if x >= 10.0 {
        format!("{x:.0}x")
    } else if x >= 1.0 {
        format!("{x:.1}x")
    } else {
        format!("{x:.2}x")
    }
}

/// The exit code of a process whose standard output was closed under it (`arbor ... | head`),
/// as a shell reports a process ended by SIGPIPE (128 + 13).
const CLOSED_PIPE_EXIT: i32 = 141;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing to a closed pipe panics in `println!`: end quietly
    // instead, with the code a SIGPIPE would give (no unsafe `signal()` call needed).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(CLOSED_PIPE_EXIT);
        }
        default_hook(info);
    }));
    // `--ros-args ...` is rcl's (r2r reads the process arguments); clap sees what precedes it.
    let argv: Vec<String> = std::env::args().collect();
    let cli = Cli::parse_from(argv.iter().take_while(|a| *a != "--ros-args"));
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Run { print_params: true, .. } => {
            print!("{}", ros_config::params_file_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { print_topics: true, .. } => {
            println!("{}", serde_json::to_string_pretty(&ros_config::topics_json())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { config, out, fleet, plan, .. } => run_node(config, out, fleet, plan),
        Command::Sim { scenario, tree, goal, seed, out, json, plan, live, perception, fleet, publish_timeout } => {
            // The fleet file is checked before the run, so a bad one costs no run (and loses no
            // episode): its error names the file and field before anything is written.
            let fleet = fleet.as_deref().map(fleet::FleetConfig::load).transpose()?;
            let code = sim(scenario, tree, goal, seed, out.clone(), json, &plan, &live, &perception)?;
            if let Some(cfg) = &fleet {
                fleet_cmd::publish_run(cfg, &out, publish_timeout)?;
            }
            Ok(code)
        }
        Command::Agent { fleet, scenario, out_root, metrics_every, exit_when_idle, plan } => {
            fleet_cmd::agent_cmd(&fleet_cmd::AgentArgs {
                fleet: &fleet,
                scenario: &scenario,
                out_root: &out_root,
                metrics_every_s: metrics_every,
                exit_when_idle_s: exit_when_idle,
                plan: &plan,
            })
        }
        Command::FleetBench { broker, robots, episodes, run } => fleet_cmd::bench_cmd(&broker, robots, episodes, &run),
        Command::Eval { suite, models, output, plan } => eval_cmd::eval_cmd(&suite, &models, &output, &plan),
        Command::FleetFlush { fleet, timeout } => fleet_cmd::flush_cmd(&fleet, timeout),
        Command::Collect { broker, output, client_id, username, password, ca_file, exit_after, idle_exit } => {
            fleet::parse_url(&broker)?;
            fleet_cmd::collect_cmd(&fleet_cmd::CollectArgs {
                broker: fleet::BrokerConfig { url: broker, username, password, ca_file },
                client_id: &client_id,
                out: &output,
                exit_after,
                idle_exit_s: idle_exit,
            })
        }
        Command::Plan { goal, scenario, seed, output, plan } => plan_cmd(&goal, &scenario, seed, output, &plan),
        Command::Tree { command: TreeCommand::Validate { files, lenient, manifests, scenario, skills } } => {
            validate(files, lenient, manifests, scenario, skills)
        }
        Command::Tree { command: TreeCommand::Convert { input, output, lenient } } => convert(input, output, lenient),
        Command::Tree { command: TreeCommand::Dot { file, mermaid } } => {
            let tree = load_tree(&file)?;
            print!("{}", if mermaid { export::to_mermaid(&tree) } else { export::to_dot(&tree) });
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { run, tree, json } => replay_cmd::replay(&run, tree.as_deref(), json),
        Command::Report { runs, output } => report::report(&runs, &output),
        Command::Dataset { command } => dataset_cmd::run(command),
        Command::Memory { command } => memory_cmd::run(command),
        Command::Perceive(args) => perceive_cmd::perceive(&args),
        Command::Btlog { run, output } => replay_cmd::btlog(&run, &output),
        Command::Skills { skills, json } => skills_cmd(skills.as_deref(), json),
    }
}

fn plan_cmd(
    goal: &str,
    scenario_path: &std::path::Path,
    seed: u64,
    output: Option<PathBuf>,
    args: &plan::PlanArgs,
) -> Result<ExitCode> {
    let mut scenario = Scenario::load(scenario_path)?;
    let mut args = args.clone();
    scenario.manifest = args.resolve_skills(scenario.manifest.clone(), Backend::Sim)?;
    let outcome = plan::plan(goal, &scenario, seed, &args)?;
    let text = yaml::to_yaml(outcome.tree.tree());
    println!("plan      {}", outcome.plan_text);
    let f = &outcome.figures;
    println!(
        "figures   {} prompt tokens, {} generated, first token {:.0} ms, {:.1} tokens/s, {} attempt(s){}",
        f.prompt_tokens,
        f.generated_tokens,
        f.time_to_first_token_s * 1000.0,
        f.tokens_per_s,
        f.attempts,
        if f.cache_hit { ", from cache" } else { "" }
    );
    for r in &outcome.rejections {
        println!("rejected  {r}");
    }
    println!("---\n{text}");
    if let Some(path) = output {
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "ros2")]
fn run_node(
    config: Option<PathBuf>,
    out: Option<PathBuf>,
    fleet: Option<PathBuf>,
    plan: plan::PlanArgs,
) -> Result<ExitCode> {
    ros_node::run(ros_node::RunArgs { config, out, fleet, plan, argv: std::env::args().collect() })
}

/// Without the `ros2` feature the checks still run (a bad config or params file is named),
/// then the command says how to get the node.
#[cfg(not(feature = "ros2"))]
fn run_node(
    config: Option<PathBuf>,
    _out: Option<PathBuf>,
    fleet: Option<PathBuf>,
    _plan: plan::PlanArgs,
) -> Result<ExitCode> {
    let argv: Vec<String> = std::env::args().collect();
    let ros = ros_config::ros_args(&argv);
    ros_config::check_ros_args(&ros, &ros_config::fq_name(&ros, "arbor"))?;
    if let Some(c) = &config {
        ros_config::NodeConfig::load(c)?;
    }
    if let Some(f) = &fleet {
        fleet::FleetConfig::load(f)?;
    }
    bail!(
        "this arbor was built without the ROS 2 node: source ROS 2 Jazzy (/opt/ros/jazzy/setup.bash, or \
         `bash .ci/rosenv && source ~/.cache/arbor/ros-env.sh`) and build with `--features ros2`"
    )
}

#[allow(clippy::too_many_arguments, reason = "one CLI command's flags, passed through once")]
fn sim(
    scenario_path: PathBuf,
    tree: Option<PathBuf>,
    goal: Option<String>,
    seed: u64,
    out: PathBuf,
    json: bool,
    plan_args: &plan::PlanArgs,
    live: &LiveArgs,
    perception: &perceive_cmd::PerceptionArgs,
) -> Result<ExitCode> {
    let perception_mode = perception.mode()?;
    if let Some(f) = live.realtime
        && !(f > 0.0 && f.is_finite())
    {
        bail!("--realtime must be a positive number, got {f}");
    }
    let metrics = match &live.metrics_addr {
        Some(_) => Some(Arc::new(Metrics::new()?)),
        None => None,
    };
    let server = match (&live.metrics_addr, &metrics) {
        (Some(addr), Some(m)) => {
            let s = metrics_server::MetricsServer::start(addr, m.clone())?;
            println!("metrics   http://{}/metrics", s.addr);
            std::io::stdout().flush()?;
            Some(s)
        }
        _ => None,
    };
    let scenario_text = std::fs::read_to_string(&scenario_path)
        .with_context(|| format!("reading scenario {}", scenario_path.display()))?;
    let mut scenario = Scenario::parse(&scenario_text, &scenario_path.display().to_string())?;
    scenario.resolve_skills(&scenario_path)?;
    let mut plan_args = plan_args.clone();
    scenario.manifest = plan_args.resolve_skills(scenario.manifest.clone(), Backend::Sim)?;
    let plan_args = &plan_args;
    let mut plan_timing = None;
    let mut plan_wall = None;
    let (tree, tree_source, tree_author, plan) = match tree {
        Some(tree_path) => (load_tree(&tree_path)?, tree_path.display().to_string(), "hand".to_string(), None),
        None => {
            let goal = goal.unwrap_or_else(|| scenario.goal.clone());
            let started = Instant::now();
            let mut plan_args = plan_args.clone();
            plan_args.metrics = metrics.clone();
            let planned = plan::plan(&goal, &scenario, seed, &plan_args);
            plan_wall = Some(started.elapsed());
            if let Some(m) = &metrics {
                plan::observe(m, &planned, started.elapsed());
            }
            let outcome = planned?;
            if !json {
                println!("plan      {}", outcome.plan_text);
            }
            let timing = outcome.timing();
            plan_timing = Some(timing);
            (outcome.tree.tree().clone(), "<planner>".to_string(), outcome.model.clone(), Some(outcome.record()))
        }
    };
    let live_opts = LiveOptions { metrics: metrics.clone(), realtime: live.realtime };
    let cfg = RunConfig {
        scenario,
        scenario_text,
        tree,
        tree_source,
        tree_author,
        seed,
        out_dir: out.clone(),
        plan,
        live: live_opts,
        perception: perception_mode,
    };
    // Wall-clock time is measured here, outside the deterministic run, and kept in its own file.
    let started = Instant::now();
    let (summary, mut latencies) = arbor_sim::runner::run_timed(&cfg)?;
    if let Some(d) = plan_wall {
        latencies.entry(Stage::Plan).or_default().record(d.as_secs_f64());
    }
    let wall = started.elapsed().as_secs_f64();
    timing::write(&out, &summary, &latencies, plan_timing.as_ref(), wall)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("scenario  {} (seed {})", summary.scenario, summary.seed);
        println!("goal      {}", summary.goal);
        println!("tree      {} -> {}", summary.tree, summary.tree_status);
        println!("outcome   {}", summary.outcome.to_string().to_uppercase());
        for c in &summary.criteria {
            println!("  [{}] {}: {}", if c.passed { "x" } else { " " }, c.criterion, c.detail);
        }
        println!(
            "sim time  {:.1} s in {:.3} s wall ({} real time), {} ticks, {:.1} m driven",
            summary.sim_time_s,
            wall,
            speed_text(summary.sim_time_s, wall),
            summary.ticks,
            summary.distance_m
        );
        let calls: Vec<String> = summary.skill_calls.iter().map(|(k, v)| format!("{k} x{v}")).collect();
        println!("skills    {}", calls.join(", "));
        let photos: Vec<String> =
            summary.photos.iter().map(|p| p.subject.clone().unwrap_or_else(|| "scene".into())).collect();
        println!("photos    {}", if photos.is_empty() { "none".into() } else { photos.join(", ") });
        if let Some(p) = &summary.perception {
            let t = &p.tracking;
            let perceive = latencies.get(&Stage::Perceive).cloned().unwrap_or_default();
            println!(
                "camera    {} frames ({} dropped), {}; MOTA {:.3}, IDF1 {:.3}, ID switches {}, detection precision {:.3} recall {:.3}; render + frame -> entities p50 {:.1} ms, p95 {:.1} ms",
                p.frames,
                p.dropped_frames,
                p.detector,
                t.mota,
                t.idf1,
                t.id_switches,
                t.detection_precision,
                t.detection_recall,
                perceive.quantile(0.5) * 1e3,
                perceive.quantile(0.95) * 1e3
            );
        }
        println!("run dir   {}", out.display());
    }
    if let Some(s) = server {
        if live.linger > 0.0 {
            std::thread::sleep(std::time::Duration::from_secs_f64(live.linger.min(3600.0)));
        }
        drop(s);
    }
    Ok(if summary.outcome == arbor_sim::runner::Outcome::Success { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `arbor skills`: every skill with its ports and bindings, memory-backed conditions last.
fn skills_cmd(file: Option<&std::path::Path>, json: bool) -> Result<ExitCode> {
    let manifest = match file {
        Some(f) => SkillManifest::load(f)?,
        None => arbor_runtime::skills::photographer(),
    };
    let registry = arbor_runtime::skills::registry_of(&manifest);
    if json {
        let all: Vec<&arbor_behaviors::SkillSpec> = registry.iter().collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("skills of {}", manifest.source);
    for s in registry.iter() {
        let kind = if s.kind == SkillKind::Action { "action" } else { "condition" };
        println!("{} ({kind}): {}", s.name, s.description);
        for p in &s.params {
            let req = if p.required { "required" } else { "optional" };
            let def = p.default.as_ref().map(|d| format!(", default {d}")).unwrap_or_default();
            println!("    {}: {} ({req}{def}) {}", p.name, p.ty, p.description);
        }
        for p in &s.outputs {
            println!("    -> {}: {} (output) {}", p.name, p.ty, p.description);
        }
        let bindings = match manifest.get(&s.name) {
            None => "memory (every backend)".to_string(),
            Some(d) => {
                let mut b = Vec::new();
                if let Some(x) = &d.builtin {
                    b.push(format!("builtin {x}"));
                }
                if d.sim.is_some() {
                    b.push("sim model".to_string());
                }
                if let Some(r) = &d.ros2 {
                    b.push(format!("ros2 {}", r.interface()));
                }
                b.join(", ")
            }
        };
        println!("    runs on: {bindings}");
    }
    for backend in [Backend::Sim, Backend::Ros2] {
        if let Err(e) = manifest.check_backend(backend) {
            println!("note: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn library(manifests: &[PathBuf]) -> Result<NodeLibrary> {
    library_with(manifests, &arbor_sim::registry())
}

fn library_with(manifests: &[PathBuf], registry: &arbor_behaviors::SkillRegistry) -> Result<NodeLibrary> {
    let mut lib = NodeLibrary::with_skills(registry);
    for m in manifests {
        lib.load_manifest(m).map_err(anyhow::Error::msg)?;
    }
    Ok(lib)
}

fn validate(
    files: Vec<PathBuf>,
    lenient: bool,
    manifests: Vec<PathBuf>,
    scenario: Option<PathBuf>,
    skills: Option<PathBuf>,
) -> Result<ExitCode> {
    if files.is_empty() {
        bail!("no tree files given");
    }
    let scenario = scenario.as_deref().map(Scenario::load).transpose()?;
    let manifest = match &skills {
        Some(f) => Some(SkillManifest::load(f)?),
        None => scenario.as_ref().and_then(|s| s.manifest.as_deref().cloned()),
    };
    let registry = arbor_runtime::skills::registry_for(manifest.as_ref());
    let lib = library_with(&manifests, &registry)?;
    let vocab = scenario.as_ref().map(Scenario::vocabulary);
    let mut failed = 0;
    for f in &files {
        let source = f.display().to_string();
        match load_tree(f).and_then(|t| t.check(&source, &lib, vocab.as_ref(), lenient)) {
            Ok(t) => {
                println!("ok    {source}: {t}");
                for w in &t.warnings {
                    println!("      note: {w}");
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("error {e}");
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn convert(input: PathBuf, output: PathBuf, lenient: bool) -> Result<ExitCode> {
    let tree = load_tree(&input)?;
    tree.check(&input.display().to_string(), &library(&[])?, None, lenient)?;
    let text = match output.extension().and_then(|e| e.to_str()) {
        Some("xml") => xml::to_xml(&tree),
        Some("yaml" | "yml") => yaml::to_yaml(&tree),
        _ => bail!("{}: unknown output format (use .xml or .yaml)", output.display()),
    };
    std::fs::write(&output, text).with_context(|| format!("writing {}", output.display()))?;
    println!("wrote {} ({} trees, {} nodes)", output.display(), tree.trees.len(), tree.size());
    Ok(ExitCode::SUCCESS)
}
