//! The planner in the CLI: `arbor plan` and `arbor sim --goal` (feature `llm`).

use anyhow::Result;
use arbor_behaviors::planner::PlanOutcome;
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
    pub prompt_style: Option<arbor_behaviors::planner::prompt::PromptStyle>,
    /// A dataset's train.jsonl: the plans of the most similar goals in it (MiniLM embeddings)
    /// are shown to the model as worked examples (retrieval instead of fine-tuning).
    #[arg(long)]
    pub examples: Option<PathBuf>,
    /// How many retrieved examples.
    #[arg(long, default_value_t = 2)]
    pub num_examples: usize,
}

#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "only the LLM planner uses examples"))]
/// Goals and plans of a dataset, with the goals' embeddings (loaded once per process).
struct ExampleBank {
    goals: Vec<String>,
    plans: Vec<String>,
    vectors: Vec<Vec<f32>>,
    model: arbor_memory::MiniLm,
}

type Banks = std::sync::Mutex<std::collections::BTreeMap<PathBuf, ExampleBank>>;
#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "only the LLM planner uses examples"))]
static BANKS: std::sync::OnceLock<Banks> = std::sync::OnceLock::new();

#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "only the LLM planner uses examples"))]
/// The `n` (goal, plan) pairs of the dataset at `path` whose goals are closest in meaning to
/// `goal` (cosine of MiniLM embeddings), best first; lines with the very same goal are skipped.
pub fn retrieve_examples(path: &std::path::Path, goal: &str, n: usize) -> Result<Vec<(String, String)>> {
    use anyhow::Context;
    use arbor_memory::Embedder;
    let banks = BANKS.get_or_init(Default::default);
    let mut banks = banks.lock().map_err(|_| anyhow::anyhow!("example bank lock poisoned"))?;
    if !banks.contains_key(path) {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let (mut goals, mut plans) = (Vec::new(), Vec::new());
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("{}:{}: not a JSON line", path.display(), i + 1))?;
            let msgs =
                v["messages"].as_array().with_context(|| format!("{}:{}: no messages", path.display(), i + 1))?;
            let content = |role: &str| {
                msgs.iter().find(|m| m["role"] == role).and_then(|m| m["content"].as_str()).map(str::to_string)
            };
            let (Some(user), Some(plan)) = (content("user"), content("assistant")) else {
                anyhow::bail!("{}:{}: needs a user and an assistant message", path.display(), i + 1);
            };
            let g = user.lines().find_map(|l| l.strip_prefix("Goal: ")).unwrap_or(&user).to_string();
            goals.push(g);
            plans.push(plan);
        }
        let mut model = arbor_memory::MiniLm::from_models_dir(2)?;
        let refs: Vec<&str> = goals.iter().map(String::as_str).collect();
        let vectors = model.embed(&refs)?;
        banks.insert(path.to_path_buf(), ExampleBank { goals, plans, vectors, model });
    }
    let bank = banks.get_mut(path).context("example bank")?;
    let q = bank.model.embed(&[goal])?.pop().unwrap_or_default();
    let mut scored: Vec<(f32, usize)> = bank
        .vectors
        .iter()
        .enumerate()
        .filter(|(i, _)| bank.goals[*i] != goal)
        .map(|(i, v)| (v.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>(), i))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out: Vec<(String, String)> = Vec::new();
    for (_, i) in scored {
        if out.len() == n {
            break;
        }
        // One example per distinct goal text.
        if out.iter().all(|(g, _)| *g != bank.goals[i]) {
            out.push((bank.goals[i].clone(), bank.plans[i].clone()));
        }
    }
    Ok(out)
}

/// The prompt style a model was trained for: `prompt_style` in `<model>.arbor.json` beside the
/// GGUF file (e.g. `planner.Q8_0.arbor.json`), else the full prompt.
#[cfg_attr(not(feature = "llm"), allow(dead_code, reason = "only the LLM planner reads model cards"))]
pub fn model_prompt_style(model: &std::path::Path) -> Result<arbor_behaviors::planner::prompt::PromptStyle> {
    use anyhow::Context;
    let card = model.with_extension("arbor.json");
    if !card.is_file() {
        return Ok(Default::default());
    }
    let text = std::fs::read_to_string(&card).with_context(|| format!("reading {}", card.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", card.display()))?;
    match v.get("prompt_style") {
        None => Ok(Default::default()),
        Some(s) => serde_json::from_value(s.clone())
            .with_context(|| format!("{}: prompt_style must be \"full\" or \"compact\"", card.display())),
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

/// Plans for a goal in a given context (the names a robot knows): the simulator's scenario,
/// or a ROS node's map. `check` is the semantic check a plan must pass (reachability).
#[cfg(feature = "llm")]
pub fn plan_in(
    goal: &str,
    mut context: arbor_behaviors::planner::PlanContext,
    check: &(dyn Fn(&arbor_behaviors::Tree) -> Result<(), String> + Sync),
    seed: u64,
    args: &PlanArgs,
) -> Result<PlanOutcome> {
    use arbor_behaviors::planner::llm::{LlamaGenerator, default_model_path};
    use arbor_behaviors::planner::{PlanRequest, Planner, Sampling};
    let path = args.model.clone().unwrap_or_else(default_model_path);
    let generator = LlamaGenerator::load(&path, args.threads)?;
    let mut planner = Planner::new(generator, arbor_sim::registry());
    planner.max_attempts = args.attempts.max(1);
    planner.prompt_budget_chars = arbor_sim::runner::PLAN_PROMPT_BUDGET;
    planner.prompt_style = match args.prompt_style {
        Some(s) => s,
        None => model_prompt_style(&path)?,
    };
    if let Some(db) = &args.memory {
        context.remembered = remembered(db, goal, args.memory_tokens)?;
    }
    if let Some(ex) = &args.examples {
        context.examples = retrieve_examples(ex, goal, args.num_examples)?;
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
    _context: arbor_behaviors::planner::PlanContext,
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
