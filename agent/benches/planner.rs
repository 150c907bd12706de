//! Planner generation speed against a plain llama-cpp-2 generation loop: same model, same
//! prompt (so the same prompt length), same thread count, greedy, in the same run. The
//! difference is the grammar sampler (and the planner's bookkeeping).
//!
//! `cargo bench -p arbor --features llm --bench planner --profile dev`
//! (llama.cpp itself is always built optimised, see .cargo/config.toml; `--profile dev` reuses
//! the test build of llama.cpp instead of compiling it again).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "benchmark binary: a model that does not load is a broken benchmark"
)]

use arbor_planner::llm::{LlamaGenerator, default_model_path};
use arbor_planner::{Generation, PlanRequest, Planner, Sampling, prompt};
use arbor_sim::Scenario;
use std::path::Path;

/// Tokens after the first over the time after the first. A generation that ended by the
/// model's end-of-turn token produced that token too (it is sampled like any other, just not
/// printed); one cut at `max_tokens` did not.
fn decode_tps(g: &Generation, max_tokens: u32) -> f64 {
    let t = g.total_s - g.time_to_first_token_s;
    let after_first =
        if g.generated_tokens < max_tokens { g.generated_tokens } else { g.generated_tokens.saturating_sub(1) };
    if t > 0.0 { f64::from(after_first) / t } else { 0.0 }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let threads = std::env::var("ARBOR_THREADS").ok().and_then(|t| t.parse().ok()).unwrap_or(2);
    let runs: usize = std::env::var("ARBOR_BENCH_RUNS").ok().and_then(|t| t.parse().ok()).unwrap_or(8);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scenario = Scenario::load(&root.join("sim/scenarios/photographer.yaml")).expect("scenario");
    let generator = LlamaGenerator::load(&default_model_path(), threads).unwrap_or_else(|e| panic!("{e}"));
    let registry = arbor_sim::registry();
    let cx = arbor_sim::planning::context(&scenario);
    let goal = "photograph each person who looks at the robot";
    let chat = prompt::build(&registry, goal, &cx, arbor_sim::runner::PLAN_PROMPT_BUDGET);
    let text = generator.chat_text(&chat);
    let planner = Planner::new(LlamaGenerator::load(&default_model_path(), threads).expect("model"), registry);
    let grammar = planner.grammar(&cx);
    // Plain loop: greedy, no grammar, a fixed number of tokens' worth of room.
    let sampling = Sampling { max_tokens: 48, ..Sampling::default() };
    let (mut plain, mut constrained, mut planned) = (Vec::new(), Vec::new(), Vec::new());
    let (mut plain_tokens, mut grammar_tokens, mut grammar_steps) = (0, 0, 0);
    let mut last_plan = String::new();
    let mut prompt_tokens = 0;
    for i in 0..runs {
        let p = generator.complete(&text, None, &sampling).expect("plain generation");
        let g = generator.complete(&text, Some(&grammar), &sampling).expect("grammar generation");
        plain.push(decode_tps(&p, sampling.max_tokens));
        constrained.push(decode_tps(&g, sampling.max_tokens));
        plain_tokens = p.generated_tokens;
        grammar_tokens = g.generated_tokens;
        grammar_steps = g.grammar_steps;
        last_plan = g.text.clone();
        prompt_tokens = p.prompt_tokens;
        // The whole planner (parse, check, semantic check); a new seed defeats the cache.
        let req = PlanRequest {
            goal: goal.into(),
            context: cx.clone(),
            sampling: Sampling { seed: i as u32 + 1, ..sampling.clone() },
        };
        if let Ok(out) = planner.plan(&req, &|_| Ok(())) {
            planned.push(out.figures.tokens_per_s);
        }
    }
    let (p, g) = (median(plain), median(constrained));
    println!("planner generation speed, {runs} runs each, {threads} threads, prompt {prompt_tokens} tokens, greedy");
    println!("  plain llama-cpp-2 loop (no grammar): {p:7.1} tokens/s  ({plain_tokens} tokens generated)");
    println!(
        "  grammar-constrained generation:      {g:7.1} tokens/s  ({grammar_tokens} tokens generated, grammar overruled the model {grammar_steps} times: `{last_plan}`)"
    );
    if !planned.is_empty() {
        println!("  full planner (grammar + checks):     {:7.1} tokens/s", median(planned));
    }
    println!("  ratio grammar / plain: {:.2}", g / p);
}
