//! The rendered camera through the real detector (CenterFace via ONNX Runtime): faces are
//! found where the renderer drew them, the geometry recovers their range, the landmarks their
//! head yaw, and turned-away heads show no face.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_core::{Pose2, SimTime};
use arbor_perception::attention::AttentionConfig;
use arbor_perception::detect::DetectorConfig;
use arbor_perception::pipeline::PipelineConfig;
use arbor_sim::render::{Textures, textures_dir};
use arbor_sim::{Scenario, World};

fn room(people: &str) -> Scenario {
    let text = format!(
        "name: room\ngoal: look\ntime_limit_s: 10\ntick_hz: 10\nmap:\n  size: [12, 8]\n  resolution: 0.1\n  places: [{{name: here, at: [1, 4]}}]\nrobot:\n  pose: [1, 4, 0]\npeople:\n{people}success: [{{photographed: p}}]\n"
    );
    Scenario::parse(&text, "room.yaml").unwrap()
}

#[test]
fn faces_are_found_where_drawn_with_range_and_head_yaw() {
    let tex = Textures::load(&textures_dir()).expect("run `bash .ci/models`");
    let mut det = DetectorConfig { threads: 2, ..DetectorConfig::centerface() }.build().unwrap();
    let face_h = PipelineConfig::default().face_height_m;
    let robot = Pose2::new(1.0, 4.0, 0.0);
    for d in [1.0f64, 1.5, 2.5, 3.5] {
        let (mut hits, mut worst_range_err) = (0, 0f64);
        for f in 0..10 {
            let s = room(&format!(
                "  - {{name: p, pose: [{}, 4.3, 180], appearance: {{face: 'lfw:{}', shirt: [200, 40, 40]}}}}\n",
                1.0 + d,
                f * 9
            ));
            let mut w = World::new(&s, 1);
            w.set_robot_pose(robot);
            let cam = w.camera_model();
            let r = w.render(&cam, &tex);
            assert_eq!(r.faces.len(), 1);
            let dets = det.detect(&r.image).unwrap();
            assert!(dets.len() <= 1, "one person, {} detections", dets.len());
            if let Some(x) = dets.iter().find(|x| x.bbox.iou(&r.faces[0].bbox) > 0.4) {
                hits += 1;
                let loc = cam.locate_by_size(robot, &x.bbox, face_h, 0.1).unwrap();
                let truth = robot.position().distance(r.faces[0].position);
                worst_range_err = worst_range_err.max((loc.range - truth).abs() / truth);
            }
        }
        let need = if d <= 2.5 { 9 } else { 7 };
        assert!(hits >= need, "{d} m: {hits}/10 faces found");
        assert!(worst_range_err < 0.15, "{d} m: range off by {:.0}%", worst_range_err * 100.0);
    }
    // Head yaw from the landmarks follows the rendered yaw; the back of a head is no face.
    let s = room("  - {name: p, pose: [3, 4, 180], appearance: {face: 'lfw:0', shirt: [40, 40, 200]}}\n");
    let mut w = World::new(&s, 1);
    w.set_robot_pose(robot);
    let cam = w.camera_model();
    let att = AttentionConfig::default();
    let mut yaws = Vec::new();
    for yaw_deg in [-45.0f64, 0.0, 45.0] {
        w.set_head("p", (180.0 + yaw_deg).to_radians());
        let dets = det.detect(&w.render(&cam, &tex).image).unwrap();
        yaws.push(att.yaw_from_landmarks(&dets[0].landmarks.unwrap()).unwrap().to_degrees());
    }
    assert!(yaws[0] < yaws[1] - 10.0 && yaws[2] > yaws[1] + 10.0, "estimated yaws {yaws:?}");
    w.set_head("p", 0.0);
    let r = w.render(&cam, &tex);
    assert!(det.detect(&r.image).unwrap().is_empty(), "the back of a head has no face");
    let _ = SimTime::ZERO;
}

#[test]
fn missing_textures_are_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = Textures::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("astronaut.png") && e.contains(".ci/models"), "{e}");
}
