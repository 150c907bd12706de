//! The OpenAI-compatible describer against a local server speaking the real wire format
//! (HTTP/1.1, `/v1/chat/completions`, image as a base64 PNG data URL in an `image_url` part),
//! and the asynchronous, rate-limited runner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_perception::describe::{AsyncDescriber, Describer, HttpDescriber};
use arbor_perception::{EntityId, SimTime};
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// Serves `n` requests: checks each is a chat completion with a decodable PNG, answers with
/// `reply(i, width, height)` as (status, body, chunked). Sends what it saw back.
fn serve(
    n: usize,
    reply: impl Fn(usize, u32, u32) -> (u16, String, bool) + Send + 'static,
) -> (String, mpsc::Receiver<serde_json::Value>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::sync_channel(n);
    let h = std::thread::spawn(move || {
        for i in 0..n {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with("POST /v1/chat/completions HTTP/1.1"), "{line}");
            let mut len = 0usize;
            let mut auth = None;
            loop {
                line.clear();
                r.read_line(&mut line).unwrap();
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                let (k, v) = l.split_once(':').unwrap();
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap(),
                    "authorization" => auth = Some(v.trim().to_string()),
                    _ => {}
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let url = v.pointer("/messages/0/content/1/image_url/url").unwrap().as_str().unwrap();
            let png = base64::engine::general_purpose::STANDARD
                .decode(url.strip_prefix("data:image/png;base64,").unwrap())
                .unwrap();
            let img = image::load_from_memory(&png).unwrap();
            let (status, text, chunked) = reply(i, img.width(), img.height());
            let reason = if status == 200 { "OK" } else { "Error" };
            let resp = if chunked {
                let (a, b) = text.split_at(text.len() / 2);
                format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                    a.len(),
                    b.len()
                )
            } else {
                format!(
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                )
            };
            s.write_all(resp.as_bytes()).unwrap();
            let mut seen = v.clone();
            seen["auth"] = serde_json::json!(auth);
            let _ = tx.send(seen);
        }
    });
    (format!("http://{addr}"), rx, h)
}

fn completion(text: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "test-vlm",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
    .to_string()
}

#[test]
fn chat_completion_with_an_image_round_trips() {
    let (url, seen, h) =
        serve(2, |i, w, hgt| (200, completion(&format!(" a person in a red shirt ({w}x{hgt}) ")), i == 1));
    let mut d = HttpDescriber::new(url.clone(), "test-vlm");
    d.api_key = Some("sekret".into());
    let img = image::RgbImage::from_pixel(40, 30, image::Rgb([200, 30, 30]));
    assert_eq!(d.describe(&img, "Describe the person.").unwrap(), "a person in a red shirt (40x30)");
    let req = seen.recv().unwrap();
    assert_eq!(req["model"], "test-vlm");
    assert_eq!(req["messages"][0]["content"][0]["text"], "Describe the person.");
    assert_eq!(req["auth"], "Bearer sekret");
    // Chunked transfer encoding is read too.
    assert_eq!(d.describe(&img, "again").unwrap(), "a person in a red shirt (40x30)");
    h.join().unwrap();
}

#[test]
fn server_errors_and_bad_bodies_are_named() {
    let (url, _seen, h) = serve(2, |i, _, _| {
        if i == 0 {
            (503, "{\"error\": \"loading model\"}".into(), false)
        } else {
            (200, "{\"choices\": []}".into(), false)
        }
    });
    let mut d = HttpDescriber::new(url.clone(), "m");
    let img = image::RgbImage::new(16, 16);
    let e = d.describe(&img, "x").unwrap_err().to_string();
    assert!(e.contains(&url) && e.contains("HTTP 503") && e.contains("loading model"), "{e}");
    let e = d.describe(&img, "x").unwrap_err().to_string();
    assert!(e.contains("not a chat completion"), "{e}");
    h.join().unwrap();
    // Nobody listening: a connection error naming the endpoint, quickly.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut d = HttpDescriber::new(format!("http://127.0.0.1:{port}"), "m");
    d.timeout_s = 2.0;
    let e = d.describe(&img, "x").unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
    let mut d = HttpDescriber::new("https://robot.local", "m");
    assert!(d.describe(&img, "x").unwrap_err().to_string().contains("only http://"));
}

#[test]
fn async_describer_never_blocks_and_rate_limits_by_robot_time() {
    // The server answers slowly; submitting must not wait for it.
    let (url, _seen, h) = serve(2, |_, _, _| {
        std::thread::sleep(Duration::from_millis(300));
        (200, completion("someone waving"), false)
    });
    let mut a = AsyncDescriber::spawn(Box::new(HttpDescriber::new(url, "m")), SimTime::from_millis(1000));
    let img = image::RgbImage::new(32, 32);
    let t0 = std::time::Instant::now();
    assert!(a.submit(SimTime::from_millis(0), Some(EntityId::new("alice")), img.clone(), "who?"));
    // Busy, and too soon: refused at once.
    assert!(!a.submit(SimTime::from_millis(100), None, img.clone(), "who?"));
    assert!(t0.elapsed() < Duration::from_millis(100), "submit blocked");
    let got = a.finish(Duration::from_secs(10));
    assert_eq!(got.len(), 1);
    let d = got.into_iter().next().unwrap().unwrap();
    assert_eq!((d.text.as_str(), d.entity.as_ref().map(EntityId::as_str)), ("someone waving", Some("alice")));
    // Free again but still within the interval of robot time: refused; after it: accepted.
    assert!(!a.submit(SimTime::from_millis(900), None, img.clone(), "who?"));
    assert!(a.submit(SimTime::from_millis(1000), None, img, "who?"));
    assert_eq!(a.finish(Duration::from_secs(10)).len(), 1);
    assert_eq!((a.submitted, a.refused), (2, 2));
    h.join().unwrap();
}
