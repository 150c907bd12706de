//! `arbor dataset generate|build|export-alpaca|import-alpaca`.

use crate::plan::PlanArgs;
use anyhow::{Context, Result, bail};
use arbor_records::dataset::{
    self, AlpacaRecord, BuildOptions, BuiltLine, DatasetLine, LineMetadata, OutcomeFilter, RunLine, approx_tokens,
};
use arbor_sim::generate::{self, Episode};
use arbor_sim::{RunConfig, Scenario};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

#[derive(clap::Subcommand, Debug)]
pub enum DatasetCommand {
    /// Generate episodes: randomized scenarios, goals from templates, trees from the scripted
    /// expert (and the LLM with --llm), each run headless and recorded. Resumable.
    Generate {
        /// Base scenario to randomize (people, positions, attention, robot start, goal).
        #[arg(long)]
        scenario: PathBuf,
        /// Episodes to have in the output directory (done ones are skipped).
        #[arg(long)]
        episodes: u64,
        /// Worker threads.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// Seed of the generation: episode i of seed s is always the same.
        #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
        seed: u64,
        /// Share of episodes that also get a perturbed-expert run (a failed tree for the
        /// same prompt, for preference pairs), 0..1.
        #[arg(long, default_value_t = 0.3)]
        negatives: f64,
        /// Let the local LLM plan each episode first; the expert teaches where it fails.
        #[arg(long)]
        llm: bool,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Build train.jsonl / val.jsonl / preferences.jsonl and a dataset card from run directories.
    Build {
        /// Run directories, or directories holding run directories (searched recursively).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
        /// Which outcomes go to train/val: success, failure or any.
        #[arg(long, default_value = "success")]
        outcome: OutcomeFilter,
        /// Percent of prompts that go to validation.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=100))]
        val_percent: u32,
        /// Replace people's names by person_1, person_2, ...
        #[arg(long)]
        redact_names: bool,
        /// System message: full (the planner's documented prompt, as recorded) or compact (one
        /// sentence; for fine-tuning a model that plans with the compact prompt).
        #[arg(long, default_value = "full")]
        prompt_style: arbor_planner::prompt::PromptStyle,
        /// Begin every prompt with this many worked examples retrieved from the training lines
        /// (MiniLM, names masked), other wordings of the nearest goals: for training a model
        /// that plans with retrieved examples (`examples` in its card). 0: none.
        #[arg(long, default_value_t = 0)]
        examples: usize,
    },
    /// Write a chat-form JSONL (train.jsonl) as an Alpaca JSON array (instruction/input/output).
    ExportAlpaca {
        input: PathBuf,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// Read an Alpaca JSON array or JSONL (e.g. BTGenBot's data) into chat-form JSONL.
    ImportAlpaca {
        input: PathBuf,
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
}

pub fn run(cmd: DatasetCommand) -> Result<ExitCode> {
    match cmd {
        DatasetCommand::Generate { scenario, episodes, jobs, seed, negatives, llm, output, plan } => {
            if llm {
                crate::plan::require_llm("dataset generate --llm")?;
            }
            generate_cmd(&scenario, episodes, jobs, seed, negatives, llm, &output, &plan)
        }
        DatasetCommand::Build { runs, output, outcome, val_percent, redact_names, prompt_style, examples } => {
            let opts = BuildOptions {
                outcome,
                val_percent,
                redact_names,
                compact_system: prompt_style == arbor_planner::prompt::PromptStyle::Compact,
                ..BuildOptions::default()
            };
            build_cmd(&runs, &output, &opts, prompt_style, examples)
        }
        DatasetCommand::ExportAlpaca { input, output } => export_alpaca(&input, &output),
        DatasetCommand::ImportAlpaca { input, output } => import_alpaca(&input, &output),
    }
}

// ------------------------------------------------------------------------------------------
// generate
// ------------------------------------------------------------------------------------------

/// A run directory is done when its dataset line (written last) is there and parses.
fn run_done(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("dataset.jsonl"))
        .ok()
        .is_some_and(|t| t.lines().next().is_some_and(|l| serde_json::from_str::<DatasetLine>(l).is_ok()))
}

#[derive(Debug, Default)]
struct Progress {
    done: u64,
    skipped: u64,
    runs: u64,
    successes: u64,
    failures: Vec<String>,
    last_print: Option<Instant>,
}

fn run_tree(
    ep: &Episode,
    tree: arbor_behaviors::Tree,
    author: &str,
    out: PathBuf,
    plan: Option<(arbor_planner::PlanRecord, arbor_planner::PlanTiming)>,
) -> Result<bool> {
    let (plan, plan_timing) = match plan {
        Some((record, timing)) => (Some(record), Some(timing)),
        None => (None, None),
    };
    let cfg = RunConfig {
        scenario: ep.scenario.clone(),
        scenario_text: ep.scenario_text.clone(),
        tree,
        tree_source: format!("{} ({author})", ep.id),
        tree_author: author.to_string(),
        seed: ep.seed,
        out_dir: out.clone(),
        plan,
        live: arbor_sim::runner::LiveOptions::default(),
        perception: Default::default(),
    };
    let started = Instant::now();
    let (summary, latencies) = arbor_sim::runner::run_timed(&cfg)?;
    crate::timing::write(&out, &summary, &latencies, plan_timing.as_ref(), started.elapsed().as_secs_f64())?;
    Ok(summary.outcome == arbor_sim::runner::Outcome::Success)
}

/// Runs one episode's trees; returns (runs made, successes).
fn episode_runs(ep: &Episode, root: &Path, negative: bool, llm: Option<&PlanArgs>) -> Result<(u64, u64)> {
    let (mut runs, mut ok) = (0, 0);
    let mut teach = true;
    if let Some(args) = llm {
        let dir = root.join(format!("{}-llm", ep.id));
        match crate::plan::plan(&ep.goal_text, &ep.scenario, ep.seed, args) {
            Ok(p) => {
                let good = run_tree(ep, p.tree.tree().clone(), &p.model, dir, Some((p.record(), p.timing())))?;
                runs += 1;
                ok += u64::from(good);
                teach = !good;
            }
            Err(e) => {
                // No tree at all (refused, or nothing valid in the attempts): the expert teaches.
                std::fs::create_dir_all(&dir).ok();
                std::fs::write(dir.join("plan_error.txt"), format!("{e:#}\n")).ok();
            }
        }
    }
    if teach {
        runs += 1;
        ok += u64::from(run_tree(ep, generate::expert(ep), "expert", root.join(&ep.id), None)?);
    }
    if negative {
        runs += 1;
        ok += u64::from(run_tree(
            ep,
            generate::perturbed(ep),
            "perturbed_expert",
            root.join(format!("{}-neg", ep.id)),
            None,
        )?);
    }
    Ok((runs, ok))
}

#[allow(clippy::too_many_arguments, reason = "one CLI command's flags, passed through once")]
fn generate_cmd(
    scenario_path: &Path,
    episodes: u64,
    jobs: usize,
    seed: u64,
    negatives: f64,
    llm: bool,
    output: &Path,
    plan: &PlanArgs,
) -> Result<ExitCode> {
    if !(0.0..=1.0).contains(&negatives) {
        bail!("--negatives must be in 0..1, got {negatives}");
    }
    let base = Scenario::load(scenario_path)?;
    let runs_dir = output.join("runs");
    std::fs::create_dir_all(&runs_dir).with_context(|| format!("creating {}", runs_dir.display()))?;
    // The generation's identity: resuming with other settings would mix two datasets.
    let manifest = serde_json::json!({
        "scenario": base.name,
        "scenario_sha256": dataset::sha256_hex(&std::fs::read_to_string(scenario_path)?),
        "seed": seed,
        "negatives": negatives,
        "llm": llm,
    });
    let manifest_path = output.join("generate.json");
    if let Ok(old) = std::fs::read_to_string(&manifest_path) {
        let old: serde_json::Value = serde_json::from_str(&old)
            .with_context(|| format!("{}: not a generation manifest", manifest_path.display()))?;
        if old != manifest {
            bail!(
                "{}: this directory holds a generation with other settings ({old}); use another --output",
                manifest_path.display()
            );
        }
    }
    std::fs::write(&manifest_path, format!("{manifest:#}\n"))?;

    let next = AtomicU64::new(0);
    let progress = Mutex::new(Progress::default());
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let llm_args = llm.then_some(plan);
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= episodes {
                break;
            }
            let result = generate::episode(&base, seed, i).map_err(anyhow::Error::msg).and_then(|ep| {
                let negative = {
                    let mut r = arbor_core::Rng::seed_from_u64(ep.seed ^ 0x6e65_6761_7469_7665);
                    r.chance(negatives)
                };
                let done = run_done(&runs_dir.join(&ep.id)) || run_done(&runs_dir.join(format!("{}-llm", ep.id)));
                let neg_done = !negative || run_done(&runs_dir.join(format!("{}-neg", ep.id)));
                if done && neg_done {
                    return Ok(None);
                }
                episode_runs(&ep, &runs_dir, negative, llm_args).map(Some)
            });
            let Ok(mut p) = progress.lock() else { break };
            p.done += 1;
            match result {
                Ok(None) => p.skipped += 1,
                Ok(Some((runs, ok))) => {
                    p.runs += runs;
                    p.successes += ok;
                }
                Err(e) => p.failures.push(format!("episode {i}: {e:#}")),
            }
            let due = p.last_print.is_none_or(|t| t.elapsed().as_millis() >= 250);
            if p.done == episodes || (tty && due) || (!tty && p.done % (episodes / 10).max(1) == 0) {
                p.last_print = Some(Instant::now());
                let secs = started.elapsed().as_secs_f64();
                let fresh = p.done - p.skipped;
                let rate = if secs > 0.0 { fresh as f64 / secs } else { 0.0 };
                let eta = if rate > 0.0 { (episodes - p.done) as f64 / rate } else { 0.0 };
                let width = 24;
                let filled = (p.done * width / episodes.max(1)) as usize;
                let line = format!(
                    "[{}{}] {}/{} episodes ({} skipped), {:.1} episodes/s, ETA {:.0} s, {} runs, {} succeeded",
                    "#".repeat(filled),
                    " ".repeat(width as usize - filled),
                    p.done,
                    episodes,
                    p.skipped,
                    rate,
                    eta,
                    p.runs,
                    p.successes
                );
                let mut err = std::io::stderr().lock();
                let _ = if tty { write!(err, "\r{line}") } else { writeln!(err, "{line}") };
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(work);
        }
    });
    let p = progress.into_inner().map_err(|_| anyhow::anyhow!("a generation worker panicked"))?;
    if tty {
        eprintln!();
    }
    let secs = started.elapsed().as_secs_f64();
    let fresh = p.done - p.skipped - p.failures.len() as u64;
    println!(
        "generated {fresh} episodes ({} runs, {} succeeded), skipped {} already done, in {secs:.1} s: {:.0} episodes/hour",
        p.runs,
        p.successes,
        p.skipped,
        if secs > 0.0 { fresh as f64 * 3600.0 / secs } else { 0.0 }
    );
    println!("runs in  {}", runs_dir.display());
    for f in &p.failures {
        eprintln!("error {f}");
    }
    Ok(if p.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

// ------------------------------------------------------------------------------------------
// build
// ------------------------------------------------------------------------------------------

fn read_run(dir: &Path) -> Result<RunLine> {
    let ds = dir.join("dataset.jsonl");
    let text = std::fs::read_to_string(&ds).with_context(|| format!("reading {}", ds.display()))?;
    let first = text.lines().next().with_context(|| format!("{}: empty", ds.display()))?;
    let line: DatasetLine =
        serde_json::from_str(first).with_context(|| format!("{}: line 1 is not a dataset line", ds.display()))?;
    // The project's line schema: system, user, assistant, none empty.
    let roles: Vec<&str> = line.messages.iter().map(|m| m.role.as_str()).collect();
    if roles != ["system", "user", "assistant"] {
        bail!("{}: line 1: messages must be system, user, assistant; got [{}]", ds.display(), roles.join(", "));
    }
    if let Some(m) = line.messages.iter().find(|m| m.content.trim().is_empty()) {
        bail!("{}: line 1: the {} message is empty", ds.display(), m.role);
    }
    let timings = std::fs::read_to_string(dir.join("timing.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    let names = std::fs::read_to_string(dir.join("scenario.yaml"))
        .ok()
        .and_then(|t| Scenario::parse(&t, &dir.join("scenario.yaml").display().to_string()).ok())
        .map(|s| s.people.iter().map(|p| p.name.clone()).collect())
        .unwrap_or_default();
    Ok(RunLine { run: dir.display().to_string(), line, timings, names })
}

fn write_jsonl<T: serde::Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    for it in items {
        serde_json::to_writer(&mut out, it)?;
        out.write_all(b"\n")?;
    }
    out.flush().with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn percentile(sorted: &[usize], q: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn card(built: &dataset::Built, opts: &BuildOptions, inputs: &[PathBuf]) -> String {
    let s = &built.stats;
    let mut lens: Vec<usize> = built
        .train
        .iter()
        .chain(&built.val)
        .map(|l| l.messages.iter().map(|m| approx_tokens(&m.content)).sum())
        .collect();
    lens.sort_unstable();
    let mut answer: Vec<usize> = built
        .train
        .iter()
        .chain(&built.val)
        .flat_map(|l| l.messages.iter().filter(|m| m.role == "assistant").map(|m| approx_tokens(&m.content)))
        .collect();
    answer.sort_unstable();
    let table = |m: &std::collections::BTreeMap<String, usize>| {
        m.iter().map(|(k, v)| format!("| {k} | {v} |")).collect::<Vec<_>>().join("\n")
    };
    format!(
        "# arbor dataset\n\n\
         Built by `arbor dataset build` from {n_in} input path(s) ({inputs}).\n\
         Chat form: each line of `train.jsonl` / `val.jsonl` is `{{\"messages\": [system, user, assistant], \"metadata\": {{...}}}}`:\n\
         the planner's system prompt (skills and plan format), the user prompt (goal and memory context) and the\n\
         tree in arbor's plan format. `preferences.jsonl` holds `prompt` / `chosen` / `rejected` pairs where the same\n\
         prompt produced a successful and a failed tree in the simulator.\n\n\
         ## Counts\n\n\
         | | |\n|---|---|\n\
         | runs read | {runs} |\n| duplicates dropped (same prompt, tree, outcome) | {dup} |\n\
         | left out by the outcome filter (`{filter:?}`) | {filt} |\n| train | {train} |\n| val | {val} |\n\
         | preference pairs | {pairs} |\n\n\
         Split: by a hash of the prompt, {valp} % of prompts to validation, so no prompt is on both sides.\n\
         Names redacted: {redact}.\n\n\
         ## Outcomes of the runs read\n\n| outcome | runs |\n|---|---|\n{outcomes}\n\n\
         ## Who wrote the trees\n\n| source | runs |\n|---|---|\n{sources}\n\n\
         ## Scenarios\n\n| scenario | runs |\n|---|---|\n{scenarios}\n\n\
         ## Lengths (approximate tokens, 4 bytes per token)\n\n\
         | | p50 | p95 | max |\n|---|---|---|---|\n\
         | whole line | {l50} | {l95} | {lmax} |\n| assistant (tree) | {a50} | {a95} | {amax} |\n",
        n_in = inputs.len(),
        inputs = inputs.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", "),
        runs = s.runs_read,
        dup = s.duplicates_dropped,
        filter = opts.outcome,
        filt = s.filtered_by_outcome,
        train = s.train,
        val = s.val,
        pairs = s.preference_pairs,
        valp = opts.val_percent,
        redact = if opts.redact_names { "yes (person_1, person_2, ... per run)" } else { "no" },
        outcomes = table(&s.outcomes),
        sources = table(&s.sources),
        scenarios = table(&s.scenarios),
        l50 = percentile(&lens, 0.5),
        l95 = percentile(&lens, 0.95),
        lmax = lens.last().copied().unwrap_or(0),
        a50 = percentile(&answer, 0.5),
        a95 = percentile(&answer, 0.95),
        amax = answer.last().copied().unwrap_or(0),
    )
}

fn build_cmd(
    inputs: &[PathBuf],
    output: &Path,
    opts: &BuildOptions,
    prompt_style: arbor_planner::prompt::PromptStyle,
    examples: usize,
) -> Result<ExitCode> {
    let mut dirs = Vec::new();
    for p in inputs {
        crate::runs::find_runs(p, "dataset.jsonl", &mut dirs)?;
    }
    if dirs.is_empty() {
        bail!("no run directories (with dataset.jsonl) under {inputs:?}");
    }
    // A run that cannot be read is reported and left out; the others are built (exit 1 then).
    let (runs, skipped) = crate::runs::read_each(&dirs, read_run)?;
    let mut built = dataset::build(runs, opts);
    if examples > 0 {
        add_examples(&mut built, examples)?;
    }
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    // What the fine-tuning script reads to write the model's card (how the model must be prompted).
    let spec = serde_json::json!({ "prompt_style": prompt_style, "examples": examples });
    std::fs::write(output.join("dataset.json"), serde_json::to_string_pretty(&spec)? + "\n")?;
    write_jsonl(&output.join("train.jsonl"), &built.train)?;
    write_jsonl(&output.join("val.jsonl"), &built.val)?;
    write_jsonl(&output.join("preferences.jsonl"), &built.preferences)?;
    let mut readme = card(&built, opts, inputs);
    if examples > 0 {
        readme.push_str(&format!(
            "\nEvery prompt begins with {examples} worked example(s) (`Example:` / `Goal:` / `Remembered:` about the \
             people its goal names / `Plan:`) retrieved from `train.jsonl` by goal similarity (MiniLM, names \
             masked), other wordings only: a model trained on this plans with examples retrieved the same way \
             (`examples` in `dataset.json` and in its card).\n"
        ));
    }
    std::fs::write(output.join("README.md"), readme)?;
    let s = &built.stats;
    println!(
        "read {} runs: {} train, {} val, {} preference pairs ({} duplicates dropped, {} left out by outcome)",
        s.runs_read, s.train, s.val, s.preference_pairs, s.duplicates_dropped, s.filtered_by_outcome
    );
    println!("wrote {}/{{train,val,preferences}}.jsonl and README.md", output.display());
    if skipped > 0 {
        eprintln!("{skipped} run(s) left out: their dataset lines could not be read (above)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prepends `n` worked examples to every train and val prompt: the training lines whose goals
/// are nearest in meaning once names are masked, other wordings only (so that training shows
/// the model what planning shows it for a wording it never saw: the same task said otherwise).
fn add_examples(built: &mut dataset::Built, n: usize) -> Result<()> {
    use arbor_planner::prompt::examples_block;
    let user_and_plan = |l: &dataset::BuiltLine| {
        let content = |role: &str| l.messages.iter().find(|m| m.role == role).map(|m| m.content.clone());
        content("user").zip(content("assistant"))
    };
    let pairs: Vec<(String, String)> = built.train.iter().filter_map(user_and_plan).collect();
    if pairs.is_empty() {
        return Ok(());
    }
    let mut bank = crate::plan::ExampleBank::new(&pairs)?;
    for line in built.train.iter_mut().chain(built.val.iter_mut()) {
        let Some(user) = line.messages.iter_mut().find(|m| m.role == "user") else { continue };
        let (goal, people, places) = crate::plan::prompt_goal_and_names(&user.content);
        let examples = bank.nearest(&goal, &people, &places, n, true)?;
        user.content = format!("{}{}", examples_block(&examples), user.content);
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Alpaca
// ------------------------------------------------------------------------------------------

fn export_alpaca(input: &Path, output: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: BuiltLine = serde_json::from_str(line)
            .with_context(|| format!("{}: line {}: not a chat-form dataset line", input.display(), i + 1))?;
        let rec = AlpacaRecord::from_messages(&v.messages)
            .with_context(|| format!("{}: line {}: no user or assistant message", input.display(), i + 1))?;
        out.push(rec);
    }
    std::fs::write(output, serde_json::to_string_pretty(&out)? + "\n")
        .with_context(|| format!("writing {}", output.display()))?;
    println!("wrote {} ({} records)", output.display(), out.len());
    Ok(ExitCode::SUCCESS)
}

fn import_alpaca(input: &Path, output: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
    let records: Vec<AlpacaRecord> = if text.trim_start().starts_with('[') {
        serde_json::from_str(&text).with_context(|| format!("{}: not an Alpaca JSON array", input.display()))?
    } else {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                serde_json::from_str(l).with_context(|| {
                    format!("{}: line {}: not an Alpaca record (instruction/input/output)", input.display(), i + 1)
                })
            })
            .collect::<Result<_>>()?
    };
    let source = input.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lines: Vec<DatasetLine> = records
        .iter()
        .enumerate()
        .map(|(i, r)| DatasetLine {
            messages: r.to_messages(),
            metadata: LineMetadata {
                scenario: format!("imported:{source}"),
                seed: i as u64,
                source: format!("alpaca:{source}"),
                // Imported data did not run here: no outcome is claimed for it.
                outcome: "unverified".into(),
                success: false,
                ticks: 0,
                sim_time_s: 0.0,
                tree_sha256: dataset::sha256_hex(&r.output),
            },
        })
        .collect();
    write_jsonl(output, &lines)?;
    println!("wrote {} ({} lines)", output.display(), lines.len());
    Ok(ExitCode::SUCCESS)
}
