//! Camera perception end to end: `arbor perceive` on real photographs, and the photographer
//! scenario run on rendered pixels (CenterFace, tracker, attention, re-identification) with
//! tracking figures, deterministic ticks, and an exact replay.

use crate::{arbor, root, stderr, stdout};

#[test]
fn perceive_prints_faces_and_landmarks_and_skips_bad_images() {
    let images = arbor_perception::onnx::models_dir().join("images");
    let o = arbor(&["perceive", images.join("astronaut.png").to_str().unwrap(), "--json", "--threads", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let dets = v["detections"].as_array().unwrap();
    assert_eq!(dets.len(), 1, "{v}");
    assert_eq!(dets[0]["label"], "face");
    assert_eq!(dets[0]["landmarks"].as_array().unwrap().len(), 5);
    let o = arbor(&["perceive", images.join("coffee.png").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("0 detection(s)"), "{}", stdout(&o));
    // A directory with a corrupt image: the good ones are still processed, exit 1.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(images.join("astronaut.png"), dir.path().join("a.png")).unwrap();
    std::fs::write(dir.path().join("b.png"), b"\x89PNG\r\n\x1a\ngarbage").unwrap();
    let o = arbor(&["perceive", dir.path().to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["detections"].as_array().unwrap().len(), 1);
    assert!(lines[1]["error"].as_str().unwrap().contains("b.png"), "{}", lines[1]);
    // A bad detector configuration names the file and field.
    let cfg = dir.path().join("det.yaml");
    std::fs::write(&cfg, "kind: yolo\nmodel: x.onnx\nthreshold: 0.3\n").unwrap();
    let o = arbor(&["perceive", dir.path().to_str().unwrap(), "--detector", cfg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("det.yaml") && stderr(&o).contains("threshold"), "{}", stderr(&o));
}

#[test]
fn photographer_succeeds_on_pixels_deterministically_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str| {
        let o = arbor(&[
            "sim",
            "--scenario",
            "sim/scenarios/photographer.yaml",
            "--tree",
            "sim/trees/photographer.yaml",
            "--seed",
            "3",
            "--perception",
            "camera",
            "--perception-threads",
            "2",
            "--out",
            dir.path().join(out).to_str().unwrap(),
            "--json",
        ]);
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        v
    };
    let a = run("a");
    assert_eq!(a["outcome"], "success", "{a}");
    let p = &a["perception"];
    assert_eq!(p["mode"], "camera");
    assert_eq!(p["enrolled"].as_array().unwrap().len(), 5, "{p}");
    assert_eq!(p["dropped_frames"], 0);
    let t = &p["tracking"];
    // Figures of this run are in the closing note; here only that tracking is real.
    assert!(t["mota"].as_f64().unwrap() > 0.3 && t["idf1"].as_f64().unwrap() > 0.3, "{t}");
    assert!(t["detection_precision"].as_f64().unwrap() > 0.8, "{t}");
    // Names come from re-identification: the photos are of the scenario's people.
    let photos: Vec<&str> = a["photos"].as_array().unwrap().iter().map(|p| p["subject"].as_str().unwrap()).collect();
    assert_eq!(photos, ["dave", "alice", "carol"]);
    // Attention events flowed into episodic memory.
    let events = std::fs::read_to_string(dir.path().join("a/events.jsonl")).unwrap();
    assert!(events.contains("\"kind\":\"attention_started\""), "no attention events");
    // Same seed, same ticks and observations.
    run("b");
    for f in ["ticks.jsonl", "observations.jsonl", "events.jsonl"] {
        let (x, y) = (
            std::fs::read(dir.path().join("a").join(f)).unwrap(),
            std::fs::read(dir.path().join("b").join(f)).unwrap(),
        );
        assert!(x == y, "{f} differs between two runs of the same seed");
    }
    // The recording replays exactly (observations come from the recording, not the camera).
    let o = arbor(&["replay", dir.path().join("a").to_str().unwrap()]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let _ = root();
}
