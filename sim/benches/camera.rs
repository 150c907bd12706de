//! End-to-end camera perception latency (criterion): `cargo bench -p arbor-sim --bench camera`.
//!
//! Frames are rendered in advance from the photographer scenario while the robot turns on the
//! spot in the office (carol walking, erin turned away) and in the kitchen (alice facing it);
//! each iteration runs one frame through the whole pipeline: CenterFace (ONNX Runtime, 2
//! threads), tracker, geometry, attention, re-identification -> entities. Before criterion,
//! one pass over the sequence prints p50/p95 per frame, and the renderer's own time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "bench code")]

use arbor_core::{Pose2, SimTime};
use arbor_perception::frame::Frame;
use arbor_perception::pipeline::{Pipeline, PipelineConfig};
use arbor_sim::render::{Textures, textures_dir};
use arbor_sim::{Scenario, World};
use criterion::{Criterion, criterion_group, criterion_main};
use std::time::Instant;

fn pct(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn frame_to_entities(c: &mut Criterion) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let scenario = Scenario::load(&root.join("scenarios/photographer.yaml")).unwrap();
    let tex = Textures::load(&textures_dir()).expect("run `bash .ci/models`");
    let mut world = World::new(&scenario, 1);
    let cam = world.camera_model();
    let mut frames: Vec<(Frame, Pose2)> = Vec::new();
    let mut render_ms = Vec::new();
    for (x, y) in [(10.0, 7.0), (10.5, 2.5)] {
        for i in 0..60 {
            world.step(0.1);
            let pose = Pose2::new(x, y, f64::from(i) * 0.1);
            world.set_robot_pose(pose);
            let t0 = Instant::now();
            let r = world.render(&cam, &tex);
            render_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            frames.push((Frame::new(world.now(), r.image, "bench").unwrap(), pose));
        }
    }
    let cfg = PipelineConfig {
        detector: arbor_perception::detect::DetectorConfig {
            threads: 2,
            ..arbor_perception::detect::DetectorConfig::centerface()
        },
        ..Default::default()
    };
    let mut pipeline = Pipeline::new(cfg, cam).unwrap();
    let mut lat = Vec::new();
    let mut entities = 0usize;
    for (f, pose) in &frames {
        let t0 = Instant::now();
        let out = pipeline.process(f, *pose).unwrap();
        lat.push(t0.elapsed().as_secs_f64() * 1e3);
        entities += out.entities.len();
    }
    println!(
        "frame -> entities over {} frames (640x480, {} entity observations): p50 {:.2} ms, p95 {:.2} ms; render p50 {:.2} ms",
        frames.len(),
        entities,
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.95),
        pct(&mut render_ms, 0.5)
    );
    let mut i = 0usize;
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(30);
    g.bench_function("frame_to_entities_640x480", |b| {
        b.iter(|| {
            let (f, pose) = &frames[i % frames.len()];
            i += 1;
            // SimTime moves on so the tracker sees a continuing sequence.
            let f = Frame { stamp: SimTime::from_millis(i as u64 * 100), ..f.clone() };
            pipeline.process(&f, *pose).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, frame_to_entities);
criterion_main!(benches);
