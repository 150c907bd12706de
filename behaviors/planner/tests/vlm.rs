//! The llama.cpp multimodal describer (feature `llm`, llama-cpp-2 `mtmd`) on a tiny
//! random-weight VLM written by `perception/vlm/make_tiny_vlm.py` (SmolLM2's tokenizer, a
//! LLaVA-style projector): both files load, a real photo is encoded into image tokens, and
//! tokens are generated. The text is meaningless by construction (random weights).
#![cfg(feature = "llm")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_core::SimTime;
use arbor_perception::describe::AsyncDescriber;
use arbor_perception::onnx::models_dir;
use arbor_planner::vlm::MtmdDescriber;
use std::path::PathBuf;
use std::time::Duration;

fn tiny_vlm(dir: &std::path::Path) -> (PathBuf, PathBuf) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../perception/vlm/make_tiny_vlm.py");
    let out = std::process::Command::new(arbor_perception::onnx::cache_dir().join("venv/bin/python"))
        .arg(script)
        .arg("--tokenizer-from")
        .arg(models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf"))
        .arg("-o")
        .arg(dir)
        .output()
        .expect("run `bash .ci/pyenv`");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (dir.join("tiny-vlm.gguf"), dir.join("tiny-vlm.mmproj.gguf"))
}

#[test]
fn tiny_vlm_encodes_a_photo_and_generates() {
    let dir = tempfile::tempdir().unwrap();
    let (model, mmproj) = tiny_vlm(dir.path());
    let mut d = MtmdDescriber::load(&model, &mmproj, 2, 8).unwrap();
    let photo = image::open(models_dir().join("images/astronaut.png")).unwrap().to_rgb8();
    let (text, stats) = d.describe_with_stats(&photo, "Describe the person.").unwrap();
    // 32x32 image, 8x8 patches: 16 image tokens.
    assert_eq!(stats.image_tokens, 16, "{stats:?}");
    assert!(stats.prompt_tokens > stats.image_tokens, "{stats:?}");
    assert!(stats.generated_tokens >= 1, "{stats:?}");
    assert!(!text.is_empty() || stats.generated_tokens > 0);
    // Deterministic: greedy decoding of the same input gives the same text.
    assert_eq!(d.describe_with_stats(&photo, "Describe the person.").unwrap().0, text);
    // Through the asynchronous runner, as the robot uses it.
    let mut a = AsyncDescriber::spawn(Box::new(d), SimTime::from_millis(500));
    assert!(a.submit(SimTime::ZERO, None, photo, "Describe the person."));
    let got = a.finish(Duration::from_secs(60));
    assert_eq!(got.len(), 1);
    assert_eq!(got.into_iter().next().unwrap().unwrap().text, text);
}

#[test]
fn wrong_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.gguf");
    std::fs::write(&junk, b"not a model").unwrap();
    let lm = models_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let e = MtmdDescriber::load(&lm, &junk, 1, 4).unwrap_err().to_string();
    assert!(e.contains("junk.gguf") && e.contains("not a GGUF"), "{e}");
    let e = MtmdDescriber::load(&lm, &dir.path().join("none.gguf"), 1, 4).unwrap_err().to_string();
    assert!(e.contains("none.gguf"), "{e}");
    // A language model given as the projector: llama.cpp refuses it, and the error says which.
    let e = MtmdDescriber::load(&lm, &lm, 1, 4).unwrap_err().to_string();
    assert!(e.contains("cannot load the projector"), "{e}");
}
