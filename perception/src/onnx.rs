//! ONNX Runtime, loaded at run time (`ort` with `load-dynamic`) from the shared library the
//! PyPI `onnxruntime` wheel carries, and where arbor's models live on disk.
//!
//! The library is found through `$ORT_DYLIB_PATH`, else `libonnxruntime.so.1.32.0` in the
//! models directory ([`models_dir`]) that `.ci/models` fills. A missing or wrong library is an
//! error naming the path, never a panic.

use std::path::PathBuf;
use std::sync::OnceLock;

/// The ONNX Runtime library version `.ci/models` fetches (PyPI `onnxruntime==1.32.0`).
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.32.0";

#[derive(Debug, Clone, thiserror::Error)]
pub enum OnnxError {
    #[error("ONNX Runtime library {path}: {message} (run `bash .ci/models`, or set ORT_DYLIB_PATH)")]
    Library { path: PathBuf, message: String },
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("model {path}: inference failed: {message}")]
    Run { path: PathBuf, message: String },
}

/// arbor's cache: `$ARBOR_CACHE`, default `~/.cache/arbor` (models, the test venv `venv/`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("ARBOR_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".cache/arbor")
    })
}

/// The directory arbor's models are fetched into: `$ARBOR_CACHE/models`, default
/// `~/.cache/arbor/models`.
pub fn models_dir() -> PathBuf {
    cache_dir().join("models")
}

/// Where the ONNX Runtime shared library is looked for.
pub fn library_path() -> PathBuf {
    std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from).unwrap_or_else(|| models_dir().join(ORT_LIBRARY))
}

static ENV: OnceLock<Result<ort::environment::Environment, OnnxError>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static ort::environment::Environment, OnnxError> {
    ENV.get_or_init(|| {
        let path = library_path();
        if !path.is_file() {
            return Err(OnnxError::Library { path, message: "no such file".into() });
        }
        let builder =
            ort::init_from(&path).map_err(|e| OnnxError::Library { path: path.clone(), message: e.to_string() })?;
        builder.with_name("arbor").build().map_err(|e| OnnxError::Library { path, message: e.to_string() })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Loads a model into a session with `threads` intra-op threads (0 = ONNX Runtime's default).
pub fn session(model: &std::path::Path, threads: usize) -> Result<ort::session::Session, OnnxError> {
    let env = environment()?;
    let err = |e: &dyn std::fmt::Display| OnnxError::Model { path: model.to_path_buf(), message: e.to_string() };
    if !model.is_file() {
        return Err(OnnxError::Model {
            path: model.to_path_buf(),
            message: "no such file (run `bash .ci/models`)".into(),
        });
    }
    let mut builder = ort::session::Session::builder(env).map_err(|e| err(&e))?;
    if threads > 0 {
        builder = builder.with_intra_threads(threads).map_err(|e| err(&e))?;
    }
    builder.commit_from_file(model).map_err(|e| err(&e))
}
