//! `arbor eval`: a suite of (scenario, goal) episodes, planned by each model given (a GGUF, or
//! `expert` for the scripted expert), each run in the simulator with several seeds; task success
//! by the scenario's criteria, valid-tree rate, attempts, tokens/s and plan latency, side by side.

use crate::plan::PlanArgs;
use anyhow::{Context, Result, bail};
use arbor_sim::generate::{self, Split};
use arbor_sim::runner::LiveOptions;
use arbor_sim::{RunConfig, Scenario};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// A suite file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    pub name: String,
    /// The base scenario the episodes are drawn from (relative to the suite file).
    pub scenario: PathBuf,
    /// train or heldout: held-out episodes use names, phrasings and a layout training never sees.
    pub split: Split,
    /// Seed of the episode draw.
    #[serde(default = "one")]
    pub seed: u64,
    pub episodes: u64,
    /// Simulator seeds per episode.
    #[serde(default = "one")]
    pub runs_per_episode: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct ModelResult {
    pub model: String,
    pub episodes: u64,
    pub valid_trees: u64,
    pub runs: u64,
    pub successes: u64,
    pub attempts: u64,
    pub tokens_per_s: Vec<f64>,
    /// Plan latency without loading the model (loaded once per process, on the first plan).
    pub plan_latency_s: Vec<f64>,
    /// Time spent loading the model, apart from plan latency.
    #[serde(default)]
    pub model_load_s: f64,
    pub failures: Vec<String>,
}

impl ModelResult {
    fn rate(n: u64, d: u64) -> f64 {
        if d == 0 { 0.0 } else { n as f64 / d as f64 }
    }
    fn median(v: &[f64]) -> f64 {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        if v.is_empty() { 0.0 } else { v[v.len() / 2] }
    }
}

pub fn eval_cmd(suite_path: &Path, models: &[String], output: &Path, args: &PlanArgs) -> Result<ExitCode> {
    let suite: Suite = crate::yaml_file::load(suite_path)?;
    if suite.episodes == 0 || suite.runs_per_episode == 0 {
        bail!("{}: 'episodes' and 'runs_per_episode' must be at least 1", suite_path.display());
    }
    let base_path = suite_path.parent().unwrap_or(Path::new(".")).join(&suite.scenario);
    let base = Scenario::load(&base_path)?;
    let models: Vec<String> = if models.is_empty() { vec!["expert".into()] } else { models.to_vec() };
    // Every model is checked before the first episode: a build without the planner, or a
    // model file that is not there, is an error, never a row of 0 % (nothing was planned).
    for spec in &models {
        let file = spec.strip_suffix("+examples").or_else(|| spec.strip_suffix("+no-examples")).unwrap_or(spec);
        if file == "expert" {
            continue;
        }
        crate::plan::require_llm(&format!("--model-under-test {spec}"))?;
        if !Path::new(file).is_file() {
            bail!("--model-under-test {spec}: {file} is not a file (a GGUF model, or `expert`)");
        }
    }
    std::fs::create_dir_all(output).with_context(|| format!("creating {}", output.display()))?;
    let mut results = Vec::new();
    for spec in &models {
        // `<model>+examples`: the same model given retrieved worked examples (--examples);
        // `<model>+no-examples`: a model trained with retrieved examples, planning without them.
        let (model, with_examples, no_examples) = if let Some(m) = spec.strip_suffix("+examples") {
            (m.to_string(), true, false)
        } else if let Some(m) = spec.strip_suffix("+no-examples") {
            (m.to_string(), false, true)
        } else {
            (spec.clone(), false, false)
        };
        if with_examples && args.examples.is_none() {
            bail!("{spec}: '+examples' needs --examples <train.jsonl>");
        }
        let model = &model;
        let mut label = if model == "expert" {
            "expert".to_string()
        } else {
            Path::new(model).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| model.clone())
        };
        if with_examples {
            label.push_str("+examples");
        }
        if no_examples {
            label.push_str("+no-examples");
        }
        let mut r = ModelResult { model: label.clone(), ..ModelResult::default() };
        let mut plan_args = args.clone();
        if !with_examples {
            plan_args.examples = None;
        }
        plan_args.no_examples |= no_examples;
        if model != "expert" {
            plan_args.model = Some(PathBuf::from(model));
        }
        for i in 0..suite.episodes {
            let ep = generate::episode_in(&base, suite.seed, i, suite.split).map_err(anyhow::Error::msg)?;
            r.episodes += 1;
            let started = Instant::now();
            let loading_before = crate::plan::model_load_time();
            let planned = if model == "expert" {
                Ok((generate::expert(&ep), None))
            } else {
                crate::plan::plan(&ep.goal_text, &ep.scenario, ep.seed, &plan_args).map(|p| {
                    let t = p.timing();
                    (p.tree.tree().clone(), Some((p.record(), t, p.figures.attempts)))
                })
            };
            let loading = crate::plan::model_load_time().saturating_sub(loading_before).as_secs_f64();
            r.model_load_s += loading;
            let latency = started.elapsed().as_secs_f64() - loading;
            let (tree, plan) = match planned {
                Ok(x) => x,
                Err(e) => {
                    r.failures.push(format!("{}: '{}': no valid tree: {e:#}", ep.id, ep.goal_text));
                    r.runs += suite.runs_per_episode;
                    continue;
                }
            };
            r.valid_trees += 1;
            r.plan_latency_s.push(latency);
            if let Some((_, t, attempts)) = &plan {
                r.attempts += u64::from(*attempts);
                if !t.cache_hit {
                    r.tokens_per_s.push(t.tokens_per_s);
                }
            } else {
                r.attempts += 1;
            }
            for k in 0..suite.runs_per_episode {
                let seed = ep.seed.wrapping_add(k);
                let out = output.join(&label).join(format!("{}-s{k}", ep.id));
                let cfg = RunConfig {
                    scenario: ep.scenario.clone(),
                    scenario_text: ep.scenario_text.clone(),
                    tree: tree.clone(),
                    tree_source: format!("{} ({label})", ep.id),
                    tree_author: label.clone(),
                    seed,
                    out_dir: out,
                    plan: plan.as_ref().map(|p| p.0.clone()),
                    live: LiveOptions::default(),
                    perception: Default::default(),
                };
                let summary = arbor_sim::run(&cfg)?;
                r.runs += 1;
                if summary.outcome == arbor_sim::runner::Outcome::Success {
                    r.successes += 1;
                } else if k == 0 {
                    r.failures.push(format!("{}: '{}': {}", ep.id, ep.goal_text, summary.outcome));
                }
            }
        }
        eprintln!("eval      {label}: {}/{} runs succeeded", r.successes, r.runs);
        results.push(r);
    }
    let mut table = format!(
        "# arbor eval: suite `{}` ({:?}, {} episodes x {} runs)\n\n\
         | model | task success | valid trees | attempts / plan | tokens/s (p50) | plan latency (p50) | model load |\n\
         |---|---|---|---|---|---|---|\n",
        suite.name, suite.split, suite.episodes, suite.runs_per_episode
    );
    for r in &results {
        let _ = writeln!(
            table,
            "| {} | {:.1} % ({}/{}) | {:.1} % | {:.2} | {:.1} | {:.3} s | {:.2} s |",
            r.model,
            100.0 * ModelResult::rate(r.successes, r.runs),
            r.successes,
            r.runs,
            100.0 * ModelResult::rate(r.valid_trees, r.episodes),
            ModelResult::rate(r.attempts, r.valid_trees),
            ModelResult::median(&r.tokens_per_s),
            ModelResult::median(&r.plan_latency_s),
            r.model_load_s,
        );
    }
    print!("{table}");
    std::fs::write(output.join("eval.md"), &table)?;
    let json = serde_json::json!({ "suite": suite, "results": results });
    std::fs::write(output.join("eval.json"), format!("{json:#}\n"))?;
    println!("wrote {}/eval.md and eval.json", output.display());
    Ok(ExitCode::SUCCESS)
}
