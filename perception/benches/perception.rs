//! Perception benchmarks (criterion): `cargo bench -p arbor-perception --bench perception`.
//!
//! - `detector/centerface_640x480_t2`: CenterFace on a 640x480 photograph (astronaut.png
//!   letterboxed onto a grey canvas), 2 intra-op threads, preprocessing, inference, decoding
//!   and NMS. Before criterion runs, the same model, input and thread count are timed with
//!   onnxruntime's own Python API (inference only, `session.run`) and with arbor in the same
//!   loop shape; the ratio arbor / Python is printed (target <= 1.05).
//! - `tracker/update/{10,100,1000}`: one ByteTrack update with that many moving objects
//!   (detections jittered, 5% missed, a few low-confidence ones).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "bench code")]

use arbor_perception::detect::{BBox, Detection, DetectorConfig};
use arbor_perception::onnx::models_dir;
use arbor_perception::track::{Tracker, TrackerConfig};
use arbor_perception::{Rng, SimTime};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

const THREADS: usize = 2;

fn frame_640x480() -> image::RgbImage {
    let photo = arbor_perception::frame::Frame::load(&models_dir().join("images/astronaut.png"), SimTime::ZERO)
        .expect("run `bash .ci/models`")
        .image;
    let small = image::imageops::resize(&photo, 480, 480, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]));
    image::imageops::replace(&mut canvas, &small, 80, 0);
    canvas
}

fn venv_python() -> PathBuf {
    arbor_perception::onnx::cache_dir().join("venv/bin/python")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median milliseconds per `session.run` in Python, same model, input and threads.
fn python_reference(img: &image::RgbImage, runs: usize) -> Option<f64> {
    let py = venv_python();
    if !py.exists() {
        eprintln!("python reference skipped: {} missing (bash .ci/pyenv)", py.display());
        return None;
    }
    let raw = std::env::temp_dir().join(format!("arbor-bench-{}.rgb", std::process::id()));
    std::fs::write(&raw, img.as_raw()).ok()?;
    let script = r#"
import sys, time, numpy as np, onnxruntime as ort
raw, w, h, model, threads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
x = np.fromfile(raw, dtype=np.uint8).reshape(h, w, 3).astype(np.float32).transpose(2, 0, 1)[None].copy()
so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.log_severity_level = 3
s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
for _ in range(5): s.run(None, {"input.1": x})
t = []
for _ in range(runs):
    t0 = time.perf_counter(); s.run(None, {"input.1": x}); t.append(time.perf_counter() - t0)
t.sort(); print(t[len(t) // 2] * 1000)
"#;
    let out = std::process::Command::new(py)
        .args(["-c", script])
        .arg(&raw)
        .args([img.width().to_string(), img.height().to_string()])
        .arg(models_dir().join("centerface.onnx"))
        .args([THREADS.to_string(), runs.to_string()])
        .output()
        .ok()?;
    let _ = std::fs::remove_file(&raw);
    if !out.status.success() {
        eprintln!("python reference failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn detector(c: &mut Criterion) {
    let img = frame_640x480();
    let mut det = DetectorConfig { threads: THREADS, ..DetectorConfig::centerface() }.build().expect("detector");
    assert_eq!(det.detect(&img).unwrap().len(), 1, "the bench frame shows one face");
    // Same-run comparison with onnxruntime's Python API: alternate so both see the same load.
    let runs = 40;
    let mut ours = Vec::new();
    for _ in 0..5 {
        det.detect(&img).unwrap();
    }
    let py1 = python_reference(&img, runs / 2);
    for _ in 0..runs {
        let t0 = Instant::now();
        black_box(det.detect(&img).unwrap());
        ours.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let py2 = python_reference(&img, runs / 2);
    let ours = median(ours);
    match (py1, py2) {
        (Some(a), Some(b)) => {
            let py = (a + b) / 2.0;
            println!(
                "centerface 640x480, {THREADS} threads: arbor {ours:.2} ms/frame (preprocess+run+decode+NMS), onnxruntime Python {py:.2} ms (run only): ratio {:.3}",
                ours / py
            );
        }
        _ => println!("centerface 640x480, {THREADS} threads: arbor {ours:.2} ms/frame (no Python reference)"),
    }
    let mut g = c.benchmark_group("detector");
    g.sample_size(30);
    g.bench_function("centerface_640x480_t2", |b| b.iter(|| black_box(det.detect(&img).unwrap())));
    g.finish();
}

/// `n` objects on a 4000x3000 canvas moving with constant velocity.
struct Scene {
    pos: Vec<(f32, f32, f32, f32)>,
    rng: Rng,
}

impl Scene {
    fn new(n: usize) -> Self {
        let mut rng = Rng::seed_from_u64(n as u64);
        let pos = (0..n)
            .map(|_| {
                (
                    rng.range(0.0, 4000.0) as f32,
                    rng.range(0.0, 3000.0) as f32,
                    rng.range(-3.0, 3.0) as f32,
                    rng.range(-3.0, 3.0) as f32,
                )
            })
            .collect();
        Self { pos, rng }
    }

    fn step(&mut self) -> Vec<Detection> {
        let mut out = Vec::with_capacity(self.pos.len());
        for p in &mut self.pos {
            p.0 += p.2;
            p.1 += p.3;
            if self.rng.chance(0.05) {
                continue;
            }
            let (jx, jy) = (self.rng.normal() as f32, self.rng.normal() as f32);
            let score = if self.rng.chance(0.1) { 0.3 } else { 0.9 };
            out.push(Detection {
                bbox: BBox::new(p.0 + jx, p.1 + jy, p.0 + jx + 30.0, p.1 + jy + 36.0),
                score,
                class_id: 0,
                label: "face".into(),
                landmarks: None,
            });
        }
        out
    }
}

fn tracker(c: &mut Criterion) {
    let mut g = c.benchmark_group("tracker/update");
    for n in [10usize, 100, 1000] {
        let mut scene = Scene::new(n);
        let mut t = Tracker::new(TrackerConfig::default());
        // Warm up so tracks exist (confirmed) before measuring.
        for _ in 0..5 {
            t.update(&scene.step());
        }
        // The scene moves on between updates (setup, not timed): every update sees the next frame.
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_batched(|| scene.step(), |d| t.update(&d), BatchSize::SmallInput)
        });
        assert!(t.tracks().len() >= n / 2, "tracks survive: {} of {n}", t.tracks().len());
    }
    g.finish();
}

criterion_group!(benches, detector, tracker);
criterion_main!(benches);
