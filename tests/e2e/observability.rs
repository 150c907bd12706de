//! Observability end to end: `/metrics` scraped while a paced run goes, the Grafana dashboard's
//! queries name metrics that exist, and `arbor report` rendered by headless Chromium.

use crate::prom::families;
#[cfg(feature = "llm")]
use crate::prom::moved;
use crate::{SCENARIO, TREE, arbor, root, stderr, stdout};
#[cfg(feature = "llm")]
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn value(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
}

/// `arbor sim <args> --metrics-addr 127.0.0.1:0 --linger 30`, scraped while the run goes (a
/// gauge such as the entities in view moves during a run, not necessarily at its end) and once
/// it is over: the families that moved in any scrape, and the last scrape.
#[cfg(feature = "llm")]
fn scrape_along(args: &[&str]) -> (BTreeSet<String>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .arg("sim")
        .args(args)
        .args(["--metrics-addr", "127.0.0.1:0", "--linger", "30"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr =
        line.trim().strip_prefix("metrics   http://").and_then(|s| s.strip_suffix("/metrics")).unwrap().to_string();
    // The run is over when it prints its run directory (then it lingers, serving).
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).is_ok_and(|n| n > 0) {
            if line.starts_with("run dir") {
                let _ = tx.send(());
                break;
            }
            line.clear();
        }
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = BTreeSet::new();
    let last = loop {
        let over = rx.recv_timeout(Duration::from_millis(250)).is_ok();
        let m = scrape(&addr);
        seen.extend(moved(&m));
        if over {
            break m;
        }
        assert!(Instant::now() < deadline, "the run did not end");
    };
    let _ = child.kill();
    let _ = child.wait();
    (seen, last)
}

/// Every registered metric moves: a camera run (the hand tree) plus a planned run with memory
/// retrieval, each scraped along. Four move only where their event happens, which a simulator
/// run does not have: `plan_cache_hits_total` and `duplicate_requests_avoided_total` (the same
/// goal again in one process), `frames_dropped_total` (the simulator renders every frame it
/// perceives) and `errors_total` (a node's runtime error). The robot's session in
/// `tests/ros2` (`..._and_every_metric_moves`) has all four and asserts every family moved.
#[cfg(feature = "llm")]
#[test]
fn a_camera_run_plus_a_planned_run_move_every_metric() {
    let dir = tempfile::tempdir().unwrap();
    let camera = dir.path().join("camera");
    let (cam_moved, cam) = scrape_along(&[
        "--scenario",
        SCENARIO,
        "--tree",
        TREE,
        "--perception",
        "camera",
        "--out",
        camera.to_str().unwrap(),
    ]);
    let db = camera.join("memory.sqlite");
    let planned_dir = dir.path().join("planned");
    let (planned_moved, planned) = scrape_along(&[
        "--scenario",
        SCENARIO,
        "--goal",
        "take a photo of alice",
        "--memory",
        db.to_str().unwrap(),
        "--out",
        planned_dir.to_str().unwrap(),
    ]);
    let all: BTreeSet<String> = cam_moved.union(&planned_moved).cloned().collect();
    let elsewhere = [
        "arbor_plan_cache_hits_total",
        "arbor_duplicate_requests_avoided_total",
        "arbor_frames_dropped_total",
        "arbor_errors_total",
    ];
    let still: Vec<String> =
        families(&cam).into_iter().filter(|f| !all.contains(f) && !elsewhere.contains(&f.as_str())).collect();
    assert!(still.is_empty(), "registered and never moved: {still:?}\n{cam}\n{planned}");
    for stage in ["perceive", "detection", "tracking", "memory_update", "memory_write", "tree_tick", "record"] {
        let n = value(&cam, &format!("arbor_stage_latency_seconds_count{{stage=\"{stage}\"}}"));
        assert!(n > 0.0, "stage {stage} never timed in the camera run:\n{cam}");
    }
    for stage in ["retrieval", "plan"] {
        let n = value(&planned, &format!("arbor_stage_latency_seconds_count{{stage=\"{stage}\"}}"));
        assert!(n > 0.0, "stage {stage} never timed in the planned run:\n{planned}");
    }
}

#[test]
fn metrics_change_while_a_run_goes_and_the_dashboard_queries_exist() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["sim", "--scenario", SCENARIO, "--tree", TREE, "--out", dir.path().join("run").to_str().unwrap()])
        // 68 s of sim time at 20x: ~3.4 s of wall time; serve 20 s more for the last scrape.
        .args(["--metrics-addr", "127.0.0.1:0", "--realtime", "20", "--linger", "20"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let addr =
        first.trim().strip_prefix("metrics   http://").and_then(|s| s.strip_suffix("/metrics")).unwrap().to_string();

    let a = scrape(&addr);
    std::thread::sleep(Duration::from_millis(800));
    let b = scrape(&addr);
    let (ta, tb) = (value(&a, "arbor_ticks_total"), value(&b, "arbor_ticks_total"));
    assert!(tb > ta, "ticks did not advance: {ta} then {tb}");
    assert!(value(&b, "arbor_sim_time_microseconds") > value(&a, "arbor_sim_time_microseconds"));
    assert!(tb < 683.0, "the run was over before the second scrape ({tb} ticks): pacing did not work");

    // Wait for the end of the run (the summary lines), then scrape once more while it lingers.
    let mut rest = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !rest.contains("run dir") {
        assert!(Instant::now() < deadline, "run did not finish: {rest}");
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        rest.push_str(&line);
    }
    assert!(rest.contains("outcome   SUCCESS"), "{rest}");
    let end = scrape(&addr);
    assert_eq!(value(&end, "arbor_ticks_total"), 683.0);
    assert_eq!(value(&end, "arbor_runs_total{outcome=\"success\"}"), 1.0);
    assert!(value(&end, "arbor_stage_latency_seconds_count{stage=\"tree_tick\"}") >= 683.0);
    assert!(end.contains("arbor_skill_calls_total{skill=\"capture_photo\"} 3"), "{end}");
    child.kill().ok();
    child.wait().unwrap();

    // Every metric the Grafana dashboard queries is exported.
    let names = families(&end);
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("launch/grafana/arbor-dashboard.json")).unwrap())
            .unwrap();
    let mut queried = 0;
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| w.starts_with("arbor_")) {
                let base = ["_bucket", "_sum", "_count"].iter().fold(word, |w, s| w.strip_suffix(s).unwrap_or(w));
                assert!(names.contains(base), "panel '{}' queries {word}, which arbor does not export", panel["title"]);
                queried += 1;
            }
        }
    }
    assert!(queried >= 20, "{queried}");
    // timing.json has the run's latency per stage.
    let timing: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/timing.json")).unwrap()).unwrap();
    assert_eq!(timing["latency"]["tree_tick"]["count"], 683);
}

/// Chromium from Debian (`.ci/setup` installs it); `$ARBOR_CHROMIUM` overrides.
fn chromium() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("ARBOR_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].iter().map(PathBuf::from).find(|p| p.is_file())
}

fn screenshot(browser: &Path, html: &Path, png: &Path, profile: &Path) {
    let mut child = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1100,2600")
        .arg(format!("file://{}", html.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium took more than 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn report_over_runs_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    for seed in ["1", "2"] {
        let out = dir.path().join(format!("runs/s{seed}"));
        let o = arbor(&["sim", "--scenario", SCENARIO, "--tree", TREE, "--seed", seed, "--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // A failing run too: a tree that photographs the wrong person.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: wrong\nroot:\n  sequence:\n    - navigate_to: {target: kitchen}\n    - capture_photo: {entity: bob}\n",
    )
    .unwrap();
    let out = dir.path().join("runs/bad");
    let o = arbor(&["sim", "--scenario", SCENARIO, "--tree", bad.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));

    let html = dir.path().join("report.html");
    let o = arbor(&["report", dir.path().join("runs").to_str().unwrap(), "-o", html.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("3 runs"), "{}", stdout(&o));
    let text = std::fs::read_to_string(&html).unwrap();
    for section in ["Latency per stage", "Tree timeline", "Planner", "Success by scenario and goal", "Slowest episodes"]
    {
        assert!(text.contains(section), "no section {section}");
    }
    assert!(text.contains("2 succeeded (67 %)"), "{}", &text[..600]);
    // Self-contained: no scripts, no stylesheets or images from elsewhere.
    for needle in ["<script", "<link", "src=", "url(", "@import", "https://"] {
        assert!(!text.contains(needle), "the report references something outside itself: {needle}");
    }
    assert!(!text.replace("xmlns=\"http://www.w3.org/2000/svg\"", "").contains("http://"));

    let Some(browser) = chromium() else {
        assert!(std::env::var_os("CI").is_none(), "no chromium: run `bash .ci/setup`");
        eprintln!("skipped the screenshot: no chromium (bash .ci/setup installs it)");
        return;
    };
    let png_path = dir.path().join("report.png");
    screenshot(&browser, &html, &png_path, &dir.path().join("profile"));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1100, 2600));
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    // The plots' colours are on the page: timeline running/success/failure, latency bars.
    let near = |p: &[u8], rgb: [u8; 3]| p.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) <= 12);
    for (name, rgb) in
        [("running", [0xf0, 0xad, 0x4e]), ("success", [0x5c, 0xb8, 0x5c]), ("latency", [0x31, 0x82, 0xbd])]
    {
        let n = pixels.iter().filter(|p| near(p, rgb)).count();
        assert!(n > 200, "{name} colour on {n} pixels only: the plots did not render");
    }
    let ink = pixels.iter().filter(|p| p.iter().take(3).any(|&c| c < 200)).count();
    assert!(ink > 20_000, "only {ink} non-white pixels");
    if let Ok(keep) = std::env::var("ARBOR_KEEP_SCREENSHOT") {
        std::fs::copy(&png_path, keep).unwrap();
    }
}
