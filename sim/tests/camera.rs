//! The rendered camera through the real detector (CenterFace via ONNX Runtime): faces are
//! found where the renderer drew them, ranges and head yaw come out of the pixels.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_perception::SimTime;
use arbor_perception::camera::CameraModel;
use arbor_perception::detect::DetectorConfig;
use arbor_perception::{Point2, Pose2};
use arbor_sim::render::{Textures, textures_dir};
use arbor_sim::{Scenario, World};

fn room(people: &str) -> Scenario {
    let text = format!(
        "name: room\ngoal: look\ntime_limit_s: 10\ntick_hz: 10\nmap:\n  size: [12, 8]\n  resolution: 0.1\n  places: [{{name: here, at: [1, 4]}}]\nrobot:\n  pose: [1, 4, 0]\npeople:\n{people}success: [{{photographed: p}}]\n"
    );
    Scenario::parse(&text, "room.yaml").unwrap()
}

#[test]
fn faces_are_detected_where_drawn_with_range_and_yaw() {
    let tex = Textures::load(&textures_dir()).unwrap();
    let mut det = DetectorConfig { threads: 2, ..DetectorConfig::centerface() }.build().unwrap();
    let mut report = Vec::new();
    let mut rate = Vec::new();
    for (i, d) in [1.0f64, 1.5, 2.5, 3.5, 4.5, 5.5].iter().enumerate() {
        let mut hits = 0;
        for f in 0..20 {
            let s = room(&format!("  - {{name: p, pose: [{}, 4.3, 180], appearance: {{face: 'lfw:{f}', shirt: [200, 40, 40]}}}}\n", 1.0 + d));
            let mut w = World::new(&s, 1);
            w.set_robot_pose(Pose2::new(1.0, 4.0, 0.0));
            let r = w.render(&w.camera_model(), &tex);
            let dets = det.detect(&r.image).unwrap();
            hits += usize::from(dets.iter().any(|x| x.bbox.iou(&r.faces[0].bbox) > 0.3));
        }
        rate.push(format!("{d}: {hits}/20"));
        let s = room(&format!("  - {{name: p, pose: [{}, 4.3, 180]}}\n", 1.0 + d));
        let mut w = World::new(&s, 1);
        w.set_robot_pose(Pose2::new(1.0, 4.0, 0.0));
        let cam: CameraModel = w.camera_model();
        for yaw_deg in [-60.0f64, -30.0, 0.0, 30.0, 60.0] {
            w.set_head("p", (180.0 + yaw_deg).to_radians());
            let r = w.render(&cam, &tex);
            if std::env::var_os("ARBOR_DUMP").is_some() {
                r.image.save(format!("/tmp/render_{i}_{yaw_deg}.png")).unwrap();
            }
            let dets = det.detect(&r.image).unwrap();
            let gt = &r.faces[0];
            let best = dets.iter().max_by(|a, b| a.bbox.iou(&gt.bbox).total_cmp(&b.bbox.iou(&gt.bbox)));
            let line = match best {
                Some(b) => {
                    let loc = cam.locate_by_size(Pose2::new(1.0, 4.0, 0.0), &b.bbox, 0.22, 0.1).unwrap();
                    let lm = b.landmarks.unwrap();
                    let eye = lm[1][0] - lm[0][0];
                    let r = (lm[2][0] - (lm[0][0] + lm[1][0]) / 2.0) / eye;
                    format!(
                        "d {d} yaw {yaw_deg}: n {} score {:.2} iou {:.2} h {:.1}/{:.1} range {:.2} nose_r {r:.3}",
                        dets.len(), b.score, b.bbox.iou(&gt.bbox), b.bbox.height(), gt.bbox.height(), loc.range
                    )
                }
                None => format!("d {d} yaw {yaw_deg}: none (gt h {:.1})", gt.bbox.height()),
            };
            report.push(line);
        }
    }
    println!("{}", report.join("\n"));
    println!("{}", rate.join("  "));
    let _ = (Point2::new(0.0, 0.0), SimTime::ZERO);
}
