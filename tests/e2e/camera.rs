//! Camera perception end to end: `arbor perceive` on real photographs, and the photographer
//! scenario run on rendered pixels (CenterFace, tracker, attention, re-identification) with
//! tracking figures, deterministic ticks, and an exact replay.

use crate::{arbor, root, stderr, stdout};
use std::io::{BufRead, BufReader, Read, Write};

/// An OpenAI-compatible chat endpoint on 127.0.0.1 that describes any image by its size. Serves
/// until the test process ends (a detached thread).
fn chat_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let mut len = 0usize;
            r.read_line(&mut line).unwrap();
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                if line.trim_end().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let url = v.pointer("/messages/0/content/1/image_url/url").unwrap().as_str().unwrap();
            use base64::Engine as _;
            let png = base64::engine::general_purpose::STANDARD
                .decode(url.strip_prefix("data:image/png;base64,").unwrap())
                .unwrap();
            let img = image::load_from_memory(&png).unwrap();
            let text = format!("a person seen in a {}x{} crop", img.width(), img.height());
            let resp =
                serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]})
                    .to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{resp}",
                resp.len()
            );
        }
    });
    url
}

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
    let endpoint = chat_server();
    let run = |out: &str, extra: &[&str]| {
        let out_dir = dir.path().join(out);
        let mut args = vec![
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
            out_dir.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let o = arbor(&args);
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        v
    };
    // Run a also describes people through an OpenAI-compatible endpoint served by this test.
    let a = run("a", &["--describe-endpoint", &endpoint, "--describe-model", "test-vlm"]);
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
    assert!(p["descriptions"].as_u64().unwrap() >= 1, "{p}");
    assert_eq!(p["description_errors"], 0, "{p}");
    let described: Vec<serde_json::Value> = events
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["kind"] == "described")
        .collect();
    assert!(!described.is_empty());
    for d in &described {
        let who = d["entity"].as_str().unwrap();
        assert!(d["text"].as_str().unwrap().starts_with(&format!("{who}: a person seen in a ")), "{d}");
    }
    // Same seed, same ticks and observations (descriptions arrive asynchronously and only
    // change the events log).
    run("b", &[]);
    for f in ["ticks.jsonl", "observations.jsonl"] {
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
