//! The planner in the CLI: `arbor plan` and `arbor sim --goal` (feature `llm`).

use anyhow::Result;
use arbor_planner::{PlanOutcome, WorkedExample};
use arbor_sim::Scenario;
use std::path::PathBuf;

/// Planner options shared by `arbor plan` and `arbor sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// GGUF model [default: $ARBOR_MODEL, else ~/.cache/arbor/models/SmolLM2-135M-Instruct.Q4_1.gguf,
    /// fetched by `bash .ci/models`].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long, default_value_t = 40)]
    pub top_k: i32,
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Most tokens per attempt.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: u32,
    /// CPU threads for llama.cpp.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Attempts (the first plus repairs) before giving up.
    #[arg(long, default_value_t = 3)]
    pub attempts: u32,
    /// A memory database (a run's memory.sqlite or a robot's): what it remembers about the
    /// goal is retrieved (hybrid: meaning, recency, importance) and given to the planner.
    #[arg(long)]
    pub memory: Option<PathBuf>,
    /// Token budget for the remembered lines in the prompt.
    #[arg(long, default_value_t = 120)]
    pub memory_tokens: usize,
    /// System prompt style: full or compact. Default: what the model's card
    /// (`<model>.arbor.json`, written by the fine-tuning script) says, else full.
    #[arg(long)]
    pub prompt_style: Option<arbor_planner::prompt::PromptStyle>,
    /// A dataset's train.jsonl: the plans of the most similar goals in it (MiniLM embeddings)
    /// are shown to the model as worked examples (retrieval instead of fine-tuning).
    #[arg(long)]
    pub examples: Option<PathBuf>,
    /// How many retrieved examples [default: 2, or what the model's card says].
    #[arg(long)]
    pub num_examples: Option<usize>,
    /// Plan without the worked examples a fine-tuned model's card asks for (an ablation).
    #[arg(long)]
    pub no_examples: bool,
    /// Live metrics: memory retrieval and example retrieval for a plan are timed into the
    /// `retrieval` stage (set by the binary where it serves /metrics).
    #[arg(skip)]
    pub metrics: Option<std::sync::Arc<arbor_behaviors::metrics::Metrics>>,
    /// The robot's skill manifest (YAML): what trees may use, what the planner is told and
    /// constrained to, what the simulator models [default: the scenario's `skills:`, else the
    /// photographer's, sim/skills/photographer.yaml].
    #[arg(long)]
    pub skills: Option<PathBuf>,
    /// The manifest in use (from `--skills` or the scenario), resolved by the entry point.
    #[arg(skip)]
    pub manifest: Option<std::sync::Arc<arbor_behaviors::SkillManifest>>,
}

impl PlanArgs {
    /// Resolves the skill manifest: `--skills` (checked for `backend`), else `fallback` (the
    /// scenario's). The error names the manifest's file, line, skill and field.
    pub fn resolve_skills(
        &mut self,
        fallback: Option<std::sync::Arc<arbor_behaviors::SkillManifest>>,
        backend: arbor_behaviors::manifest::Backend,
    ) -> Result<Option<std::sync::Arc<arbor_behaviors::SkillManifest>>> {
        let m = match &self.skills {
            Some(f) => {
                let m = arbor_behaviors::SkillManifest::load(f)?;
                m.check_backend(backend)?;
                Some(std::sync::Arc::new(m))
            }
            None => fallback,
        };
        self.manifest = m.clone();
        Ok(m)
    }
}

/// An error when this build has no LLM planner (feature `llm`) and `what` needs one.
pub fn require_llm(what: &str) -> Result<()> {
    if cfg!(feature = "llm") {
        return Ok(());
    }
    anyhow::bail!(
        "{what}: this arbor was built without the LLM planner: build with `cargo build --release --features llm` \
         (compiles llama.cpp; needs cmake and clang, see README)"
    )
}

/// Replaces the names of people and places in `text` by "someone" and "place" (whole
/// words, any case), so that retrieval compares what a goal asks, not whom or where: "capture an
/// image of noor, then make your way to the lobby" and "photograph bob, then go to the office"
/// are then close, "photograph noor" and "go to the lobby" far apart.
pub fn mask_names(text: &str, people: &[String], places: &[String]) -> String {
    let mut out = text.to_lowercase();
    let mut names: Vec<(String, &str)> = people
        .iter()
        .map(|p| (p.to_lowercase(), "someone"))
        .chain(places.iter().map(|p| (p.to_lowercase(), "place")))
        .filter(|(n, _)| !n.trim().is_empty())
        .collect();
    // Longest first: "living room" before "room".
    names.sort_by_key(|n| std::cmp::Reverse(n.0.len()));
    for (name, with) in names {
        let mut result = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&name) {
            let before = rest[..i].chars().next_back();
            let after = rest[i + name.len()..].chars().next();
            result.push_str(&rest[..i]);
            result.push_str(if is_word_char(before) || is_word_char(after) { &name } else { with });
            rest = &rest[i + name.len()..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

fn is_word_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_alphanumeric() || c == '_')
}

/// Whether `text` names `name` as a whole word (any case).
fn names_word(text: &str, name: &str) -> bool {
    let (text, name) = (text.to_lowercase(), name.to_lowercase());
    if name.trim().is_empty() {
        return false;
    }
    text.match_indices(&name).any(|(i, _)| {
        !is_word_char(text[..i].chars().next_back()) && !is_word_char(text[i + name.len()..].chars().next())
    })
}

/// The lines of a planner prompt's user message from its last `Goal:` line on (the worked
/// examples before it have their own).
fn own_lines(user: &str) -> Vec<&str> {
    let lines: Vec<&str> = user.lines().collect();
    let start = lines.iter().rposition(|l| l.starts_with("Goal: ")).unwrap_or(0);
    lines[start..].to_vec()
}

/// The `Remembered:` lines of a planner prompt's user message (its own, after its last `Goal:`)
/// that name one of `people` named in `goal` ([`prompt_goal_and_names`]): what a worked example
/// shows beside its plan ("noor was last seen in the lobby"), so that the example teaches where
/// to look for someone, not one room.
pub fn prompt_remembered_about_goal(user: &str, goal: &str, people: &[String]) -> Vec<String> {
    let named: Vec<&String> = people.iter().filter(|p| names_word(goal, p)).collect();
    if named.is_empty() {
        return Vec::new();
    }
    own_lines(user)
        .into_iter()
        .skip_while(|l| *l != "Remembered:")
        .skip(1)
        .map_while(|l| l.strip_prefix("- "))
        .filter(|l| named.iter().any(|p| names_word(l, p)))
        .map(str::to_string)
        .collect()
}

/// The goal, people and places of a planner prompt's user message (the last `Goal:` line: the
/// worked examples before it have their own).
pub fn prompt_goal_and_names(user: &str) -> (String, Vec<String>, Vec<String>) {
    let lines = own_lines(user);
    let goal = lines.first().and_then(|l| l.strip_prefix("Goal: ")).unwrap_or(user).to_string();
    let names = |prefix: &str| -> Vec<String> {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .map(|l| {
                l.split(", ").map(str::trim).filter(|n| !n.is_empty() && *n != "none").map(str::to_string).collect()
            })
            .unwrap_or_default()
    };
    (goal, names("People: "), names("Places: "))
}

/// Goals and plans of a dataset with the embeddings of their goals, names masked
/// ([`mask_names`]): the bank that worked examples are retrieved from.
pub struct ExampleBank {
    goals: Vec<String>,
    masked: Vec<String>,
    remembered: Vec<Vec<String>>,
    plans: Vec<String>,
    vectors: Vec<Vec<f32>>,
    model: arbor_memory::MiniLm,
}

impl ExampleBank {
    /// A bank of (user message, plan) pairs, as a dataset's lines hold them.
    pub fn new(lines: &[(String, String)]) -> Result<Self> {
        use arbor_memory::Embedder;
        let (mut goals, mut masked, mut remembered, mut plans) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (user, plan) in lines {
            let (goal, people, places) = prompt_goal_and_names(user);
            masked.push(mask_names(&goal, &people, &places));
            remembered.push(prompt_remembered_about_goal(user, &goal, &people));
            goals.push(goal);
            plans.push(plan.clone());
        }
        let mut model = arbor_memory::MiniLm::from_models_dir(2)?;
        let mut vectors = Vec::with_capacity(masked.len());
        for chunk in masked.chunks(64) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            vectors.extend(model.embed(&refs)?);
        }
        Ok(ExampleBank { goals, masked, remembered, plans, vectors, model })
    }

    /// The bank of a dataset file (chat-form JSONL: a user and an assistant message a line).
    pub fn load(path: &std::path::Path) -> Result<Self> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        // Any chat-form line will do (a dataset's metadata is not needed).
        #[derive(serde::Deserialize)]
        struct ChatLine {
            messages: Vec<arbor_records::dataset::Message>,
        }
        let mut lines = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: ChatLine = serde_json::from_str(line).with_context(|| {
                format!("{}:{}: not a chat-form JSON line ({{\"messages\": [..]}})", path.display(), i + 1)
            })?;
            let content = |role: &str| v.messages.iter().find(|m| m.role == role).map(|m| m.content.clone());
            let (Some(user), Some(plan)) = (content("user"), content("assistant")) else {
                anyhow::bail!("{}:{}: needs a user and an assistant message", path.display(), i + 1);
            };
            lines.push((user, plan));
        }
        Self::new(&lines).with_context(|| format!("embedding the goals of {}", path.display()))
    }

    /// The `n` worked examples (goal, what was remembered about its people, plan) whose goals
    /// are closest in meaning to `goal` (cosine of the name-masked embeddings), best first, one
    /// per distinct goal text; the very same goal text is skipped. With `other_wordings`, goals worded like this one (the same text once names
    /// are masked) are skipped too: for training prompts, so that the examples a model learns
    /// from are what it gets for a new wording at planning time, the same task said otherwise.
    pub fn nearest(
        &mut self,
        goal: &str,
        people: &[String],
        places: &[String],
        n: usize,
        other_wordings: bool,
    ) -> Result<Vec<WorkedExample>> {
        use arbor_memory::Embedder;
        let masked = mask_names(goal, people, places);
        let q = self.model.embed(&[masked.as_str()])?.pop().unwrap_or_default();
        let mut scored: Vec<(f32, usize)> = self
            .vectors
            .iter()
            .enumerate()
            .filter(|(i, _)| self.goals[*i] != goal && !(other_wordings && self.masked[*i] == masked))
            .map(|(i, v)| (v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>(), i))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut out: Vec<WorkedExample> = Vec::new();
        for (_, i) in scored {
            if out.len() == n {
                break;
            }
            if out.iter().all(|e| e.goal != self.goals[i]) {
                out.push(WorkedExample {
                    goal: self.goals[i].clone(),
                    remembered: self.remembered[i].clone(),
                    plan: self.plans[i].clone(),
                });
            }
        }
        Ok(out)
    }
}

type Banks = std::sync::Mutex<std::collections::BTreeMap<PathBuf, ExampleBank>>;
#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "only the LLM planner uses examples"))]
static BANKS: std::sync::OnceLock<Banks> = std::sync::OnceLock::new();

#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "only the LLM planner uses examples"))]
/// The `n` worked examples of the dataset at `path` whose goals are closest in meaning to
/// `goal` in a context of `people` and `places` ([`ExampleBank::nearest`]); each file is loaded
/// and embedded once per process.
pub fn retrieve_examples(
    path: &std::path::Path,
    goal: &str,
    people: &[String],
    places: &[String],
    n: usize,
) -> Result<Vec<WorkedExample>> {
    use anyhow::Context;
    let banks = BANKS.get_or_init(Default::default);
    let mut banks = banks.lock().map_err(|_| anyhow::anyhow!("example bank lock poisoned"))?;
    if !banks.contains_key(path) {
        banks.insert(path.to_path_buf(), ExampleBank::load(path)?);
    }
    banks.get_mut(path).context("example bank")?.nearest(goal, people, places, n, false)
}

/// What a fine-tuned model's card (`<model>.arbor.json` beside the GGUF file, written by
/// `agent/learn/finetune.py`) tells the planner: the prompt style it was trained with, and
/// whether it was trained with retrieved worked examples (how many, and the bank to retrieve
/// them from, a path relative to the card).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelCard {
    pub prompt_style: arbor_planner::prompt::PromptStyle,
    pub examples: Option<(PathBuf, usize)>,
}

/// The card of `model` ([`ModelCard`]); a model without one gets the full prompt and no examples.
#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "only the LLM planner reads model cards"))]
pub fn model_card(model: &std::path::Path) -> Result<ModelCard> {
    use anyhow::Context;
    let card = model.with_extension("arbor.json");
    if !card.is_file() {
        return Ok(ModelCard::default());
    }
    let text = std::fs::read_to_string(&card).with_context(|| format!("reading {}", card.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", card.display()))?;
    let prompt_style = match v.get("prompt_style") {
        None => Default::default(),
        Some(s) => serde_json::from_value(s.clone())
            .with_context(|| format!("{}: prompt_style must be \"full\" or \"compact\"", card.display()))?,
    };
    let n = match v.get("examples") {
        None | Some(serde_json::Value::Null) => 0,
        Some(n) => {
            n.as_u64().with_context(|| format!("{}: examples must be a count of worked examples", card.display()))?
                as usize
        }
    };
    let examples = if n == 0 {
        None
    } else {
        let file = v
            .get("examples_file")
            .and_then(|f| f.as_str())
            .with_context(|| format!("{}: examples: {n} needs examples_file (the bank)", card.display()))?;
        let path = card.parent().unwrap_or(std::path::Path::new(".")).join(file);
        if !path.is_file() {
            anyhow::bail!("{}: examples_file {} does not exist", card.display(), path.display());
        }
        Some((path, n))
    };
    Ok(ModelCard { prompt_style, examples })
}

/// A plan's figures into the live metrics: the plan stage, its result, attempts, cache hits,
/// duplicate requests avoided, time to first token and tokens/s of generated plans.
pub fn observe(m: &arbor_behaviors::metrics::Metrics, planned: &Result<PlanOutcome>, elapsed: std::time::Duration) {
    m.observe(arbor_behaviors::metrics::Stage::Plan, elapsed);
    let result = match planned {
        Ok(_) => "ok",
        Err(e) if e.to_string().contains("refus") => "refused",
        Err(_) => "failed",
    };
    m.plans.with_label_values(&[result]).inc();
    let Ok(outcome) = planned else { return };
    m.plan_attempts.inc_by(u64::from(outcome.figures.attempts));
    if outcome.figures.coalesced {
        m.duplicate_requests_avoided.inc();
    }
    if outcome.figures.cache_hit {
        m.plan_cache_hits.inc();
    } else {
        m.plan_ttft.observe(outcome.figures.time_to_first_token_s);
        m.plan_tokens_per_s.observe(outcome.figures.tokens_per_s);
    }
}

/// Lines memory retrieves for `goal`, fitted into `budget` tokens (time order).
pub fn remembered(db: &std::path::Path, goal: &str, budget: usize) -> Result<Vec<String>> {
    let mut mem = crate::memory_cmd::open_with_model(db)?;
    let now = crate::memory_cmd::latest_time(&mem)?;
    let hits = mem.retrieve(&arbor_memory::Query::new(goal, now, 24))?;
    let block = arbor_memory::build_context(&hits, budget, &arbor_memory::store::approx_tokens);
    Ok(block.lines().map(|l| l.trim_start_matches("- ").to_string()).collect())
}

#[cfg(feature = "llm")]
pub fn plan(goal: &str, scenario: &Scenario, seed: u64, args: &PlanArgs) -> Result<PlanOutcome> {
    let check = arbor_sim::planning::reachability(scenario);
    plan_in(goal, arbor_sim::planning::context(scenario), &check, seed, args)
}

/// Models loaded once per process: every plan of a process (`arbor eval`'s episodes, `dataset
/// generate --llm`, the agent's goals, the ROS node's) reuses the model and its planner, whose
/// cache answers a request seen before and coalesces identical requests in flight.
#[cfg(feature = "llm")]
pub mod loaded {
    use anyhow::Result;
    use arbor_planner::Planner;
    use arbor_planner::llm::LlamaGenerator;
    use arbor_planner::prompt::PromptStyle;
    use std::collections::HashMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    /// Model, threads, attempts, prompt style, and the skill manifest's text (empty: default).
    type Key = (PathBuf, usize, u32, PromptStyle, String);
    pub type Shared = Arc<Planner<LlamaGenerator>>;

    static PLANNERS: OnceLock<Mutex<HashMap<Key, Shared>>> = OnceLock::new();
    static LOAD_TIME: Mutex<Duration> = Mutex::new(Duration::ZERO);

    /// The planner for a model and settings, loading the model the first time.
    pub fn planner(
        path: &Path,
        threads: usize,
        attempts: u32,
        style: PromptStyle,
        skills: Option<&arbor_behaviors::SkillManifest>,
    ) -> Result<Shared> {
        let key =
            (path.to_path_buf(), threads, attempts, style, skills.map(|m| m.text().to_string()).unwrap_or_default());
        let mut map = PLANNERS.get_or_init(Default::default).lock().map_err(|_| anyhow::anyhow!("planner lock"))?;
        if let Some(p) = map.get(&key) {
            return Ok(p.clone());
        }
        let started = Instant::now();
        let generator = LlamaGenerator::load(path, threads)?;
        if let Ok(mut t) = LOAD_TIME.lock() {
            *t += started.elapsed();
        }
        let mut planner = Planner::new(generator, arbor_runtime::skills::registry_for(skills));
        planner.max_attempts = attempts;
        planner.prompt_budget_chars = arbor_runtime::PLAN_PROMPT_BUDGET;
        planner.prompt_style = style;
        let shared = Arc::new(planner);
        map.insert(key, shared.clone());
        Ok(shared)
    }

    /// Wall time this process spent loading models (apart from planning).
    pub fn load_time() -> Duration {
        LOAD_TIME.lock().map(|t| *t).unwrap_or_default()
    }
}

/// Wall time this process spent loading models, apart from planning (eval reports it apart).
pub fn model_load_time() -> std::time::Duration {
    #[cfg(feature = "llm")]
    return loaded::load_time();
    #[cfg(not(feature = "llm"))]
    std::time::Duration::ZERO
}

/// Plans for a goal in a given context (the names a robot knows): the simulator's scenario,
/// or a ROS node's map. `check` is the semantic check a plan must pass (reachability).
#[cfg(feature = "llm")]
pub fn plan_in(
    goal: &str,
    mut context: arbor_planner::PlanContext,
    check: &(dyn Fn(&arbor_behaviors::Tree) -> Result<(), String> + Sync),
    seed: u64,
    args: &PlanArgs,
) -> Result<PlanOutcome> {
    use arbor_planner::llm::default_model_path;
    use arbor_planner::{PlanRequest, Sampling};
    let path = args.model.clone().unwrap_or_else(default_model_path);
    let card = model_card(&path)?;
    let style = args.prompt_style.unwrap_or(card.prompt_style);
    let planner = loaded::planner(&path, args.threads, args.attempts.max(1), style, args.manifest.as_deref())?;
    let retrieval = std::time::Instant::now();
    if let Some(db) = &args.memory {
        context.remembered = remembered(db, goal, args.memory_tokens)?;
    }
    // Worked examples: from --examples, else from the bank the model was trained with.
    let bank = match (&args.examples, card.examples) {
        (Some(file), _) => Some((file.clone(), args.num_examples.unwrap_or(2))),
        (None, Some((file, n))) if !args.no_examples => Some((file, args.num_examples.unwrap_or(n))),
        _ => None,
    };
    if let Some((file, n)) = bank {
        context.examples = retrieve_examples(&file, goal, &context.people, &context.places, n)?;
    }
    if let Some(m) = &args.metrics
        && (args.memory.is_some() || !context.examples.is_empty())
    {
        m.observe(arbor_behaviors::metrics::Stage::Retrieval, retrieval.elapsed());
    }
    let request = PlanRequest {
        goal: goal.to_string(),
        context,
        sampling: Sampling {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: (seed & 0xffff_ffff) as u32,
            max_tokens: args.max_tokens,
        },
    };
    Ok(planner.plan(&request, check)?)
}

#[cfg(not(feature = "llm"))]
pub fn plan(_goal: &str, _scenario: &Scenario, _seed: u64, _args: &PlanArgs) -> Result<PlanOutcome> {
    anyhow::bail!(
        "this arbor was built without the LLM planner: build with `cargo build --release --features llm` \
         (compiles llama.cpp; needs cmake and clang, see README), or pass --tree <file>"
    )
}

#[cfg(not(feature = "llm"))]
#[cfg_attr(not(feature = "ros2"), allow(dead_code, reason = "only the ROS 2 node plans in a context"))]
pub fn plan_in(
    goal: &str,
    _context: arbor_planner::PlanContext,
    _check: &(dyn Fn(&arbor_behaviors::Tree) -> Result<(), String> + Sync),
    seed: u64,
    args: &PlanArgs,
) -> Result<PlanOutcome> {
    let _ = (goal, seed, args);
    anyhow::bail!(
        "this arbor was built without the LLM planner: build with `--features llm` to plan from goal \
         text, or send a tree (YAML or BT.CPP XML) as the goal"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]
    use super::*;

    /// Planner lifetime: the model loads once per process; the same goal planned twice is one
    /// generation and one cache hit, counted in the metrics.
    #[cfg(feature = "llm")]
    #[test]
    fn a_process_loads_a_model_once_and_the_second_plan_is_a_cache_hit() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            plan: PlanArgs,
        }
        let args = Cli::parse_from(["test"]).plan;
        let model = args.model.clone().unwrap_or_else(arbor_planner::llm::default_model_path);
        if !model.is_file() {
            assert!(std::env::var_os("CI").is_none(), "{}: run bash .ci/models", model.display());
            eprintln!("skipped: no model at {} (bash .ci/models)", model.display());
            return;
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let text = std::fs::read_to_string(root.join("sim/scenarios/photographer.yaml")).unwrap();
        let scenario = Scenario::parse(&text, "photographer.yaml").unwrap();
        let metrics = arbor_behaviors::metrics::Metrics::new().unwrap();
        let goal = "take a photo of alice";
        let first = plan(goal, &scenario, 1, &args);
        observe(&metrics, &first, std::time::Duration::from_millis(1));
        let loaded = model_load_time();
        assert!(loaded > std::time::Duration::ZERO, "the first plan loaded the model");
        let second = plan(goal, &scenario, 1, &args);
        observe(&metrics, &second, std::time::Duration::from_millis(1));
        assert_eq!(model_load_time(), loaded, "the second plan reused the loaded model");
        let (a, b) = (first.unwrap(), second.unwrap());
        assert!(!a.figures.cache_hit && b.figures.cache_hit);
        assert_eq!(a.plan_text, b.plan_text);
        assert_eq!(metrics.plan_cache_hits.get(), 1);
        assert_eq!(metrics.plans.with_label_values(&["ok"]).get(), 2);
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_are_masked_as_whole_words_in_any_case() {
        let people = names(&["noor", "al"]);
        let places = names(&["living room", "lobby"]);
        assert_eq!(
            mask_names("Capture an image of Noor, then make your way to the lobby", &people, &places),
            "capture an image of someone, then make your way to the place"
        );
        // "al" inside "all", "lobby" inside "lobbyist": not names.
        assert_eq!(mask_names("photograph all of them", &people, &places), "photograph all of them");
        assert_eq!(mask_names("ask the lobbyist", &people, &places), "ask the lobbyist");
        assert_eq!(mask_names("go to the living room.", &people, &places), "go to the place.");
    }

    #[test]
    fn an_example_keeps_what_was_remembered_about_the_people_its_goal_names() {
        let user = "Example:\nGoal: photograph bob\nRemembered:\n- bob was last seen in the office\nPlan: x\n\n\
                    Goal: Could you photograph Noor?\nPlaces: lobby, office\nPeople: noor, al, bob\nObjects: none\n\
                    Remembered:\n- al was last seen in the office\n- noor was last seen in the lobby\n\
                    - bob was last seen in the office\nPlan:";
        let about = |user: &str| {
            let (goal, people, _) = prompt_goal_and_names(user);
            prompt_remembered_about_goal(user, &goal, &people)
        };
        assert_eq!(about(user), names(&["noor was last seen in the lobby"]));
        // A goal that names nobody ("all" is not "al") shows nothing remembered.
        let user = "Goal: photograph all of them\nPlaces: lobby\nPeople: al\nObjects: none\n\
                    Remembered:\n- al was last seen in the lobby\nPlan:";
        assert!(about(user).is_empty());
        assert!(names_word("Photograph Noor, then", "noor") && !names_word("noora", "noor"));
    }

    #[test]
    fn a_bad_example_bank_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let bank = dir.path().join("bank.jsonl");
        let err = |text: &str| {
            std::fs::write(&bank, text).unwrap();
            format!("{:#}", ExampleBank::load(&bank).err().expect("a bad bank must not load"))
        };
        let good =
            r#"{"messages": [{"role": "user", "content": "Goal: x"}, {"role": "assistant", "content": "wait()"}]}"#;
        let e = err(&format!("{good}\n\n{{not json\n"));
        assert!(e.contains("bank.jsonl:3: not a chat-form JSON line"), "{e}");
        let e = err("{\"messages\": [{\"role\": \"user\", \"content\": \"Goal: x\"}]}\n");
        assert!(e.contains("bank.jsonl:1: needs a user and an assistant message"), "{e}");
    }

    #[test]
    fn the_goal_and_names_of_a_prompt_are_read_after_its_examples() {
        let user = "Example:\nGoal: photograph bob\nPlan: capture_photo(entity=bob)\n\n\
                    Goal: go to the lobby\nPlaces: lobby, office\nPeople: noor\nObjects: none\nPlan:";
        let (goal, people, places) = prompt_goal_and_names(user);
        assert_eq!(goal, "go to the lobby");
        assert_eq!(people, names(&["noor"]));
        assert_eq!(places, names(&["lobby", "office"]));
        let (goal, people, _) = prompt_goal_and_names("Goal: wait\nPlaces: none\nPeople: none\nPlan:");
        assert_eq!((goal.as_str(), people.len()), ("wait", 0));
    }

    #[test]
    fn model_cards_name_their_style_and_example_bank_or_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("planner.Q8_0.gguf");
        assert_eq!(model_card(&model).ok(), Some(ModelCard::default()));
        let card = dir.path().join("planner.Q8_0.arbor.json");
        let write = |s: &str| std::fs::write(&card, s).unwrap();
        write(r#"{"prompt_style": "compact", "examples": 1, "examples_file": "planner.Q8_0.examples.jsonl"}"#);
        let err = model_card(&model).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("planner.Q8_0.examples.jsonl does not exist"), "{err}");
        std::fs::write(dir.path().join("planner.Q8_0.examples.jsonl"), "").unwrap();
        let c = model_card(&model).unwrap();
        assert_eq!(c.prompt_style, arbor_planner::prompt::PromptStyle::Compact);
        assert_eq!(c.examples, Some((dir.path().join("planner.Q8_0.examples.jsonl"), 1)));
        write(r#"{"prompt_style": "compact", "examples": 0, "examples_file": null}"#);
        assert_eq!(model_card(&model).ok().and_then(|c| c.examples), None);
        write(r#"{"prompt_style": "tiny"}"#);
        assert!(model_card(&model).is_err());
        write(r#"{"examples": 2}"#);
        let err = model_card(&model).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("examples_file"), "{err}");
    }
}
