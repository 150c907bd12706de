//! Validate-and-repair around a text generator, with a cache.
//!
//! The generator writes planning text under the grammar; the planner parses it, checks it
//! like any tree (node library, ports, the world's names) plus a caller-given semantic check
//! (e.g. places reachable), and on failure hands the error back to the model for a bounded
//! number of retries. The result is a checked tree, a refusal, or a clear error: never an
//! unvalidated tree. Identical requests (model, prompt, grammar, sampling, seed) are answered
//! once: concurrent callers wait for the same generation.

use super::format::{self, Plan};
use super::grammar::{self, GrammarOptions};
use super::prompt::{self, ChatPrompt, PlanContext};
use arbor_behaviors::library::NodeLibrary;
use arbor_behaviors::skill::{SkillRegistry, Vocabulary};
use arbor_behaviors::tree::{CheckedTree, Tree};
use arbor_core::digest::sha256_hex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Sampling settings. `temperature` 0 means greedy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub seed: u32,
    pub max_tokens: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Self { temperature: 0.0, top_k: 40, top_p: 0.95, seed: 1, max_tokens: 256 }
    }
}

/// One generation by a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    /// Wall-clock figures (kept out of deterministic records).
    pub time_to_first_token_s: f64,
    pub total_s: f64,
    /// Steps where the grammar had to overrule the model's own choice.
    #[serde(default)]
    pub grammar_steps: u32,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Model(String),
    #[error("generation failed: {0}")]
    Generation(String),
    #[error("the planner refused the goal: {0}")]
    Refused(String),
    #[error("no valid plan after {attempts} attempts; last error: {last_error}")]
    Invalid { attempts: u32, last_error: String, raw_outputs: Vec<String> },
}

/// Anything that writes text for a prompt under a grammar: llama.cpp, a test double.
pub trait Generator: Send + Sync {
    /// Identifies the model (path, size, ...) for the cache key.
    fn model_id(&self) -> String;
    fn generate(&self, prompt: &ChatPrompt, grammar: &str, sampling: &Sampling) -> Result<Generation, PlanError>;
}

/// Figures recorded with every plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanFigures {
    pub attempts: u32,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
    pub time_to_first_token_s: f64,
    pub generation_s: f64,
    /// Generated tokens per second after the first token.
    pub tokens_per_s: f64,
    pub cache_hit: bool,
    /// The same request was being planned when this one came: it waited for that answer
    /// instead of generating again (a duplicate request avoided).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub coalesced: bool,
}

/// A successful plan and how it came about.
#[derive(Debug, Clone)]
pub struct PlanOutcome {
    pub tree: CheckedTree,
    /// The accepted planning text.
    pub plan_text: String,
    pub prompt: ChatPrompt,
    pub grammar_sha256: String,
    pub model: String,
    pub sampling: Sampling,
    /// Every raw output, in order (rejected ones first).
    pub raw_outputs: Vec<String>,
    /// Why earlier outputs were rejected.
    pub rejections: Vec<String>,
    pub figures: PlanFigures,
}

/// The deterministic part of a plan, kept in a run's records (`plan.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub goal: String,
    pub model: String,
    pub prompt: ChatPrompt,
    pub grammar_sha256: String,
    pub sampling: Sampling,
    pub raw_outputs: Vec<String>,
    pub rejections: Vec<String>,
    pub plan_text: String,
    pub attempts: u32,
    pub prompt_tokens: u32,
    pub generated_tokens: u32,
}

/// The wall-clock part of a plan (`plan_timing.json`, apart from the records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanTiming {
    pub time_to_first_token_s: f64,
    pub generation_s: f64,
    pub tokens_per_s: f64,
    pub cache_hit: bool,
}

impl PlanOutcome {
    pub fn record(&self) -> PlanRecord {
        PlanRecord {
            goal: self.tree.tree().goal.clone().unwrap_or_default(),
            model: self.model.clone(),
            prompt: self.prompt.clone(),
            grammar_sha256: self.grammar_sha256.clone(),
            sampling: self.sampling.clone(),
            raw_outputs: self.raw_outputs.clone(),
            rejections: self.rejections.clone(),
            plan_text: self.plan_text.clone(),
            attempts: self.figures.attempts,
            prompt_tokens: self.figures.prompt_tokens,
            generated_tokens: self.figures.generated_tokens,
        }
    }

    pub fn timing(&self) -> PlanTiming {
        PlanTiming {
            time_to_first_token_s: self.figures.time_to_first_token_s,
            generation_s: self.figures.generation_s,
            tokens_per_s: self.figures.tokens_per_s,
            cache_hit: self.figures.cache_hit,
        }
    }
}

/// What the planner needs to know about the world for one request.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub goal: String,
    pub context: PlanContext,
    pub sampling: Sampling,
}

type Slot = Arc<OnceLock<Result<PlanOutcome, PlanError>>>;

pub struct Planner<G: Generator> {
    generator: G,
    registry: SkillRegistry,
    library: NodeLibrary,
    pub max_attempts: u32,
    pub prompt_budget_chars: usize,
    /// The system message style (fine-tuned models were trained with `Compact`).
    pub prompt_style: prompt::PromptStyle,
    pub grammar_options: GrammarOptions,
    cache: Mutex<HashMap<String, Slot>>,
}

impl<G: Generator> std::fmt::Debug for Planner<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("model", &self.generator.model_id())
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

impl<G: Generator> Planner<G> {
    pub fn new(generator: G, registry: SkillRegistry) -> Self {
        let library = NodeLibrary::with_skills(&registry);
        Self {
            generator,
            registry,
            library,
            max_attempts: 3,
            prompt_budget_chars: 1600,
            prompt_style: prompt::PromptStyle::Full,
            grammar_options: GrammarOptions::default(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn generator(&self) -> &G {
        &self.generator
    }

    pub fn library(&self) -> &NodeLibrary {
        &self.library
    }

    /// The grammar for a context (what the model is constrained by).
    pub fn grammar(&self, cx: &PlanContext) -> String {
        grammar::generate(&self.registry, &vocabulary(cx), &self.grammar_options)
    }

    /// Number of distinct requests answered (cache entries).
    pub fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Plans a goal. `semantic_check` adds checks the tree model cannot know (reachability).
    pub fn plan(
        &self,
        req: &PlanRequest,
        semantic_check: &(dyn Fn(&Tree) -> Result<(), String> + Sync),
    ) -> Result<PlanOutcome, PlanError> {
        let prompt =
            prompt::build_styled(self.prompt_style, &self.registry, &req.goal, &req.context, self.prompt_budget_chars);
        let grammar = self.grammar(&req.context);
        let key =
            sha256_hex(&serde_json::json!([self.generator.model_id(), prompt, grammar, req.sampling]).to_string());
        let slot = {
            let mut cache =
                self.cache.lock().map_err(|_| PlanError::Generation("planner cache lock poisoned".into()))?;
            let existing = cache.get(&key).cloned();
            match existing {
                Some(s) => (s, true),
                None => {
                    let s: Slot = Arc::new(OnceLock::new());
                    cache.insert(key, s.clone());
                    (s, false)
                }
            }
        };
        let (slot, existed) = slot;
        // Found but not answered yet: another thread is planning the same request right now.
        let in_flight = existed && slot.get().is_none();
        let mut computed_here = false;
        let result = slot.get_or_init(|| {
            computed_here = true;
            self.plan_uncached(req, prompt, &grammar, semantic_check)
        });
        let mut result = result.clone();
        if let Ok(outcome) = &mut result {
            outcome.figures.cache_hit = existed || !computed_here;
            outcome.figures.coalesced = in_flight || (!existed && !computed_here);
        }
        result
    }

    fn plan_uncached(
        &self,
        req: &PlanRequest,
        first_prompt: ChatPrompt,
        grammar: &str,
        semantic_check: &(dyn Fn(&Tree) -> Result<(), String> + Sync),
    ) -> Result<PlanOutcome, PlanError> {
        let vocab = vocabulary(&req.context);
        let mut prompt = first_prompt.clone();
        let mut raw_outputs = Vec::new();
        let mut rejections = Vec::new();
        let mut figures = PlanFigures::default();
        // Tokens/s counts the tokens after the first over the time after the first token
        // (the first token's time is prompt processing, reported as time to first token).
        let (mut decode_s, mut decoded) = (0.0f64, 0u32);
        for attempt in 1..=self.max_attempts.max(1) {
            let generation = self.generator.generate(&prompt, grammar, &req.sampling)?;
            figures.attempts = attempt;
            figures.prompt_tokens += generation.prompt_tokens;
            figures.generated_tokens += generation.generated_tokens;
            if attempt == 1 {
                figures.time_to_first_token_s = generation.time_to_first_token_s;
            }
            figures.generation_s += generation.total_s;
            decode_s += (generation.total_s - generation.time_to_first_token_s).max(0.0);
            // A generation that ended on its own also sampled the end-of-turn token.
            decoded += if generation.generated_tokens < req.sampling.max_tokens {
                generation.generated_tokens
            } else {
                generation.generated_tokens.saturating_sub(1)
            };
            let text = generation.text.trim().to_string();
            raw_outputs.push(text.clone());
            let verdict = format::parse(&text, &self.library, "plan", Some(&req.goal))
                .map_err(|e| e.to_string())
                .and_then(|plan| match plan {
                    Plan::Refused(reason) => Ok(Err(reason)),
                    Plan::Tree(tree) => {
                        let checked = tree
                            .into_checked("<plan>", &self.library, Some(&vocab), false)
                            .map_err(|e| e.to_string())?;
                        semantic_check(checked.tree())?;
                        Ok(Ok(checked))
                    }
                });
            match verdict {
                Ok(Ok(tree)) => {
                    figures.tokens_per_s = if decode_s > 0.0 { f64::from(decoded) / decode_s } else { 0.0 };
                    return Ok(PlanOutcome {
                        tree,
                        plan_text: text,
                        prompt: first_prompt,
                        grammar_sha256: sha256_hex(grammar),
                        model: self.generator.model_id(),
                        sampling: req.sampling.clone(),
                        raw_outputs,
                        rejections,
                        figures,
                    });
                }
                Ok(Err(reason)) => return Err(PlanError::Refused(reason)),
                Err(e) => {
                    prompt = prompt::repair(&first_prompt, &text, &e);
                    rejections.push(e);
                }
            }
        }
        Err(PlanError::Invalid {
            attempts: figures.attempts,
            last_error: rejections.last().cloned().unwrap_or_default(),
            raw_outputs,
        })
    }
}

/// The names a plan may use: what memory knows.
pub fn vocabulary(cx: &PlanContext) -> Vocabulary {
    Vocabulary { places: cx.places.clone(), entities: cx.people.iter().chain(&cx.objects).cloned().collect() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arbor_behaviors::skill::{ParamSpec, ParamType, SkillSpec};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Answers from a script of outputs, counting calls.
    struct Scripted {
        outputs: Vec<&'static str>,
        calls: AtomicU32,
    }

    impl Generator for Scripted {
        fn model_id(&self) -> String {
            "scripted".into()
        }
        fn generate(&self, _p: &ChatPrompt, _g: &str, _s: &Sampling) -> Result<Generation, PlanError> {
            let i = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            std::thread::sleep(std::time::Duration::from_millis(20));
            let text = self.outputs.get(i).or(self.outputs.last()).copied().unwrap_or_default().to_string();
            Ok(Generation {
                text,
                prompt_tokens: 10,
                generated_tokens: 5,
                time_to_first_token_s: 0.01,
                total_s: 0.02,
                grammar_steps: 0,
            })
        }
    }

    fn planner(outputs: Vec<&'static str>) -> Planner<Scripted> {
        let mut r = SkillRegistry::new();
        r.register(SkillSpec::action("navigate_to", "go", vec![ParamSpec::required("target", ParamType::Target, "")]));
        r.register(SkillSpec::action("scan", "look", vec![]));
        Planner::new(Scripted { outputs, calls: AtomicU32::new(0) }, r)
    }

    fn req() -> PlanRequest {
        PlanRequest {
            goal: "go to the kitchen".into(),
            context: PlanContext { places: vec!["kitchen".into()], ..Default::default() },
            sampling: Sampling::default(),
        }
    }

    #[test]
    fn repairs_then_succeeds_and_caches() {
        let p = planner(vec!["navigate_to(target=garage)", "sequence(navigate_to(target=kitchen), scan())"]);
        let out = p.plan(&req(), &|_| Ok(())).unwrap();
        assert_eq!(out.figures.attempts, 2);
        assert!(out.rejections[0].contains("unknown place or entity 'garage'"), "{:?}", out.rejections);
        assert_eq!(out.plan_text, "sequence(navigate_to(target=kitchen), scan())");
        assert!(!out.figures.cache_hit);
        let again = p.plan(&req(), &|_| Ok(())).unwrap();
        assert!(again.figures.cache_hit);
        assert_eq!(p.generator().calls.load(Ordering::SeqCst), 2, "the second request was answered from the cache");
    }

    #[test]
    fn refusals_and_exhausted_attempts_are_errors() {
        let p = planner(vec!["refuse(\"no shell here\")"]);
        assert_eq!(p.plan(&req(), &|_| Ok(())).unwrap_err(), PlanError::Refused("no shell here".into()));
        let p = planner(vec!["navigate_to(target=garage)"]);
        match p.plan(&req(), &|_| Ok(())).unwrap_err() {
            PlanError::Invalid { attempts, raw_outputs, .. } => assert_eq!((attempts, raw_outputs.len()), (3, 3)),
            e => panic!("{e}"),
        }
        // The semantic check is applied as well.
        let p = planner(vec!["navigate_to(target=kitchen)"]);
        let e = p.plan(&req(), &|_| Err("kitchen is not reachable".into())).unwrap_err();
        assert!(e.to_string().contains("kitchen is not reachable"), "{e}");
    }

    #[test]
    fn concurrent_identical_requests_share_one_generation() {
        let p = planner(vec!["scan()"]);
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| p.plan(&req(), &|_| Ok(())).unwrap())).collect();
            let hits = hs.into_iter().map(|h| h.join().unwrap().figures.cache_hit).filter(|h| *h).count();
            assert_eq!(hits, 3);
        });
        assert_eq!(p.generator().calls.load(Ordering::SeqCst), 1);
    }
}
