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
    use arbor_behaviors::planner::llm::{LlamaGenerator, default_model_path};
    use arbor_behaviors::planner::{PlanRequest, Planner, Sampling};
    let path = args.model.clone().unwrap_or_else(default_model_path);
    let generator = LlamaGenerator::load(&path, args.threads)?;
    let mut planner = Planner::new(generator, arbor_sim::registry());
    planner.max_attempts = args.attempts.max(1);
    planner.prompt_budget_chars = arbor_sim::runner::PLAN_PROMPT_BUDGET;
    let mut context = arbor_sim::planning::context(scenario);
    if let Some(db) = &args.memory {
        context.remembered = remembered(db, goal, args.memory_tokens)?;
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
    let check = arbor_sim::planning::reachability(scenario);
    Ok(planner.plan(&request, &check)?)
}

#[cfg(not(feature = "llm"))]
pub fn plan(_goal: &str, _scenario: &Scenario, _seed: u64, _args: &PlanArgs) -> Result<PlanOutcome> {
    anyhow::bail!(
        "this arbor was built without the LLM planner: build with `cargo build --release --features llm` \
         (compiles llama.cpp; needs cmake and clang, see README), or pass --tree <file>"
    )
}
