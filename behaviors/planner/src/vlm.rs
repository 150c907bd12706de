//! Vision-language descriptions through llama.cpp's multimodal library (llama-cpp-2 `mtmd`,
//! feature `llm`): any GGUF language model plus its `mmproj` projector file. It lives here,
//! beside the planner, because llama.cpp's backend is initialised once per process.
//!
//! Implements [`arbor_perception::describe::Describer`], so the robot runs it through
//! [`arbor_perception::describe::AsyncDescriber`] (a worker thread, rate-limited).

use crate::llm::backend;
use arbor_perception::describe::{DescribeError, Describer};
use image::RgbImage;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::mtmd::{
    MtmdBitmap, MtmdContext, MtmdContextParams, MtmdInputChunkType, MtmdInputText, mtmd_default_marker,
};
use llama_cpp_2::sampling::LlamaSampler;
use std::ffi::CString;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

/// What one description cost.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VlmStats {
    /// Tokens the image became (the projector's output).
    pub image_tokens: usize,
    /// All prompt positions (text + image).
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
}

/// A llama.cpp multimodal model: language model + projector.
pub struct MtmdDescriber {
    model: LlamaModel,
    mtmd: MtmdContext,
    model_path: PathBuf,
    threads: i32,
    n_ctx: u32,
    pub max_tokens: u32,
}

impl std::fmt::Debug for MtmdDescriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MtmdDescriber").field("model", &self.model_path).finish()
    }
}

fn err(m: impl std::fmt::Display) -> DescribeError {
    DescribeError::Model(m.to_string())
}

impl MtmdDescriber {
    /// Loads the language model and its projector. Missing or wrong files are errors naming
    /// the file.
    pub fn load(model: &Path, mmproj: &Path, threads: usize, max_tokens: u32) -> Result<Self, DescribeError> {
        for p in [model, mmproj] {
            let mut magic = [0u8; 4];
            std::fs::File::open(p)
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
                .map_err(|e| err(format!("{}: {e}", p.display())))?;
            if &magic != b"GGUF" {
                return Err(err(format!("{}: not a GGUF file", p.display())));
            }
        }
        let backend = backend().map_err(err)?;
        let lm = LlamaModel::load_from_file(backend, model, &LlamaModelParams::default())
            .map_err(|e| err(format!("{}: cannot load the language model: {e}", model.display())))?;
        let params = MtmdContextParams {
            use_gpu: false,
            print_timings: false,
            n_threads: threads.clamp(1, 64) as i32,
            media_marker: CString::new(mtmd_default_marker()).map_err(err)?,
            image_min_tokens: -1,
            image_max_tokens: -1,
        };
        let path = mmproj.to_str().ok_or_else(|| err(format!("{}: path is not UTF-8", mmproj.display())))?;
        let mtmd = MtmdContext::init_from_file(path, &lm, &params).map_err(|e| {
            err(format!("{}: cannot load the projector for {}: {e}", mmproj.display(), model.display()))
        })?;
        if !mtmd.support_vision() {
            return Err(err(format!("{}: the projector has no vision encoder", mmproj.display())));
        }
        Ok(Self {
            model: lm,
            mtmd,
            model_path: model.to_path_buf(),
            threads: threads.clamp(1, 64) as i32,
            n_ctx: 2048,
            max_tokens,
        })
    }

    /// The prompt with the image marker, in the model's chat template (ChatML without one).
    fn prompt_text(&self, prompt: &str) -> String {
        let user = format!("{}\n{prompt}", mtmd_default_marker());
        self.model
            .chat_template(None)
            .ok()
            .and_then(|t| {
                let msgs = vec![LlamaChatMessage::new("user".into(), user.clone()).ok()?];
                self.model.apply_chat_template(&t, &msgs, true).ok()
            })
            .unwrap_or_else(|| format!("<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"))
    }

    /// Describes an image; greedy decoding up to `max_tokens`.
    pub fn describe_with_stats(&mut self, image: &RgbImage, prompt: &str) -> Result<(String, VlmStats), DescribeError> {
        let bitmap = MtmdBitmap::from_image_data(image.width(), image.height(), image.as_raw())
            .map_err(|e| err(format!("image {}x{}: {e}", image.width(), image.height())))?;
        let text = MtmdInputText { text: self.prompt_text(prompt), add_special: true, parse_special: true };
        let chunks = self.mtmd.tokenize(text, &[&bitmap]).map_err(|e| err(format!("tokenizing: {e}")))?;
        let mut stats = VlmStats { prompt_tokens: chunks.total_tokens(), ..Default::default() };
        for i in 0..chunks.len() {
            if let Some(c) = chunks.get(i)
                && c.chunk_type() == MtmdInputChunkType::Image
            {
                stats.image_tokens += c.n_tokens();
            }
        }
        if stats.prompt_tokens + self.max_tokens as usize >= self.n_ctx as usize {
            return Err(err(format!(
                "{} prompt tokens + {} to generate exceed the context of {}",
                stats.prompt_tokens, self.max_tokens, self.n_ctx
            )));
        }
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(self.n_ctx))
            .with_n_batch(512)
            .with_n_threads(self.threads)
            .with_n_threads_batch(self.threads);
        let backend = backend().map_err(err)?;
        let mut ctx = self.model.new_context(backend, params).map_err(|e| err(format!("llama context: {e}")))?;
        let n_prompt =
            chunks.eval_chunks(&mut self.mtmd, &mut ctx, 0, 0, 512, true).map_err(|e| err(format!("encoding: {e}")))?;
        let vocab = self.model.vocab();
        let mut sampler = LlamaSampler::greedy();
        let mut out = Vec::new();
        let mut batch = LlamaBatch::new(1, 1);
        for n_past in (n_prompt..).take(self.max_tokens as usize) {
            let token = sampler.sample(&ctx, -1);
            sampler.accept(token);
            if vocab.is_eog(token) {
                break;
            }
            stats.generated_tokens += 1;
            out.extend_from_slice(&vocab.token_to_piece(token, false, None));
            batch.clear();
            batch.add(token, n_past, &[0], true).map_err(err)?;
            ctx.decode(&mut batch).map_err(|e| err(format!("decoding: {e}")))?;
        }
        Ok((String::from_utf8_lossy(&out).trim().to_string(), stats))
    }
}

impl Describer for MtmdDescriber {
    fn name(&self) -> String {
        format!("llama.cpp mtmd ({})", self.model_path.display())
    }

    fn describe(&mut self, image: &RgbImage, prompt: &str) -> Result<String, DescribeError> {
        self.describe_with_stats(image, prompt).map(|(t, _)| t)
    }
}
