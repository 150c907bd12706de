//! Vision-language descriptions ("a woman in a white spacesuit, smiling at the camera"):
//! a [`Describer`] trait with an OpenAI-compatible chat backend here ([`HttpDescriber`]:
//! llama-server, vLLM, Ollama on the robot) and a llama.cpp multimodal backend in the agent
//! (it owns the llama.cpp build). [`AsyncDescriber`] runs any of them on a worker thread,
//! rate-limited and bounded, so the tick loop never waits for a model.

use crate::{EntityId, SimTime};
use base64::Engine as _;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum DescribeError {
    #[error("describer {endpoint}: {message}")]
    Http { endpoint: String, message: String },
    #[error("describer {endpoint}: HTTP {status}: {body}")]
    Status { endpoint: String, status: u16, body: String },
    #[error("describer {endpoint}: response is not a chat completion: {message}")]
    Response { endpoint: String, message: String },
    #[error("describer: {0}")]
    Model(String),
    #[error("describer: cannot encode image: {0}")]
    Encode(String),
}

/// Anything that turns an image and a prompt into text.
pub trait Describer: Send {
    fn name(&self) -> String;
    fn describe(&mut self, image: &RgbImage, prompt: &str) -> Result<String, DescribeError>;
}

/// PNG bytes of an image.
pub fn png_bytes(image: &RgbImage) -> Result<Vec<u8>, DescribeError> {
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| DescribeError::Encode(e.to_string()))?;
    Ok(out)
}

/// An OpenAI-compatible `/v1/chat/completions` endpoint with image input (the image goes as
/// a `data:image/png;base64,...` URL in an `image_url` content part). Plain HTTP/1.1: the
/// endpoint is on the robot or its local network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpDescriber {
    /// `http://host:port` (the path `/v1/chat/completions` is added unless given).
    pub endpoint: String,
    pub model: String,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    #[serde(default = "default_timeout")]
    pub timeout_s: f64,
    /// Sent as `Authorization: Bearer <key>` when set.
    #[serde(default)]
    pub api_key: Option<String>,
}

fn default_max_tokens() -> u32 {
    64
}
fn default_timeout() -> f64 {
    30.0
}

impl HttpDescriber {
    pub fn new(endpoint: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            model: model.into(),
            max_tokens: default_max_tokens(),
            timeout_s: default_timeout(),
            api_key: None,
        }
    }

    fn err(&self, message: impl std::fmt::Display) -> DescribeError {
        DescribeError::Http { endpoint: self.endpoint.clone(), message: message.to_string() }
    }

    /// (host:port, path) of the endpoint.
    fn target(&self) -> Result<(String, String), DescribeError> {
        let rest = self
            .endpoint
            .strip_prefix("http://")
            .ok_or_else(|| self.err("only http:// endpoints are supported (put TLS in a local proxy)"))?;
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let path = if path.is_empty() || path == "/" { "/v1/chat/completions" } else { path };
        let host = if host.contains(':') { host.to_string() } else { format!("{host}:80") };
        Ok((host, path.to_string()))
    }

    /// The request body for an image and a prompt.
    pub fn request_body(&self, png: &[u8], prompt: &str) -> serde_json::Value {
        let url = format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png));
        serde_json::json!({
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": 0.0,
            "messages": [{
                "role": "user",
                "content": [
                    {"type": "text", "text": prompt},
                    {"type": "image_url", "image_url": {"url": url}}
                ]
            }]
        })
    }

    fn post(&self, body: &[u8]) -> Result<(u16, Vec<u8>), DescribeError> {
        let (host, path) = self.target()?;
        let timeout = Duration::from_secs_f64(self.timeout_s.max(0.1));
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&host)
            .map_err(|e| self.err(format!("cannot resolve {host}: {e}")))?
            .next()
            .ok_or_else(|| self.err(format!("cannot resolve {host}")))?;
        let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| self.err(e))?;
        stream.set_read_timeout(Some(timeout)).map_err(|e| self.err(e))?;
        stream.set_write_timeout(Some(timeout)).map_err(|e| self.err(e))?;
        let auth = self.api_key.as_ref().map(|k| format!("Authorization: Bearer {k}\r\n")).unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).map_err(|e| self.err(e))?;
        stream.write_all(body).map_err(|e| self.err(e))?;
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        r.read_line(&mut line).map_err(|e| self.err(e))?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.err(format!("bad status line {:?}", line.trim_end())))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(|e| self.err(e))? == 0 {
                return Err(self.err("connection closed in the headers"));
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = v.parse::<usize>().ok();
                } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line).map_err(|e| self.err(e))?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| self.err(format!("bad chunk size {:?}", line.trim())))?;
                if size == 0 {
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                r.read_exact(&mut body[start..]).map_err(|e| self.err(e))?;
                line.clear();
                r.read_line(&mut line).map_err(|e| self.err(e))?;
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            r.read_exact(&mut body).map_err(|e| self.err(e))?;
        } else {
            r.read_to_end(&mut body).map_err(|e| self.err(e))?;
        }
        Ok((status, body))
    }
}

impl Describer for HttpDescriber {
    fn name(&self) -> String {
        format!("{} at {}", self.model, self.endpoint)
    }

    fn describe(&mut self, image: &RgbImage, prompt: &str) -> Result<String, DescribeError> {
        let body = serde_json::to_vec(&self.request_body(&png_bytes(image)?, prompt))
            .map_err(|e| DescribeError::Encode(e.to_string()))?;
        let (status, resp) = self.post(&body)?;
        let text = String::from_utf8_lossy(&resp);
        if status != 200 {
            return Err(DescribeError::Status {
                endpoint: self.endpoint.clone(),
                status,
                body: text.chars().take(300).collect(),
            });
        }
        let bad = |m: &str| DescribeError::Response { endpoint: self.endpoint.clone(), message: m.to_string() };
        let v: serde_json::Value = serde_json::from_slice(&resp).map_err(|e| bad(&e.to_string()))?;
        v.pointer("/choices/0/message/content")
            .and_then(|c| c.as_str())
            .map(|s| s.trim().to_string())
            .ok_or_else(|| bad("no choices[0].message.content"))
    }
}

/// A description of what the camera saw, attached to an entity (or the scene).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Description {
    pub stamp: SimTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<EntityId>,
    pub text: String,
    pub model: String,
    /// Wall-clock time the model took, milliseconds (live figure; not deterministic).
    pub latency_ms: f64,
}

struct Job {
    stamp: SimTime,
    entity: Option<EntityId>,
    image: RgbImage,
    prompt: String,
}

/// Runs a describer on its own thread. `submit` never blocks: it refuses while a job is in
/// flight or when the last accepted job is less than `min_interval` of robot time old.
pub struct AsyncDescriber {
    jobs: Option<mpsc::SyncSender<Job>>,
    results: mpsc::Receiver<Result<Description, DescribeError>>,
    worker: Option<std::thread::JoinHandle<()>>,
    min_interval: SimTime,
    last: Option<SimTime>,
    in_flight: usize,
    pub submitted: u64,
    pub refused: u64,
}

impl std::fmt::Debug for AsyncDescriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDescriber").field("submitted", &self.submitted).field("refused", &self.refused).finish()
    }
}

impl AsyncDescriber {
    pub fn spawn(mut describer: Box<dyn Describer>, min_interval: SimTime) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Job>(1);
        // At most one job is in flight, so at most one result waits.
        let (rtx, rrx) = mpsc::sync_channel(2);
        let worker = std::thread::Builder::new()
            .name("arbor-describe".into())
            .spawn(move || {
                let model = describer.name();
                while let Ok(job) = rx.recv() {
                    let t0 = Instant::now();
                    let res = describer.describe(&job.image, &job.prompt).map(|text| Description {
                        stamp: job.stamp,
                        entity: job.entity,
                        text,
                        model: model.clone(),
                        latency_ms: t0.elapsed().as_secs_f64() * 1e3,
                    });
                    if rtx.send(res).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Self { jobs: Some(tx), results: rrx, worker, min_interval, last: None, in_flight: 0, submitted: 0, refused: 0 }
    }

    /// Offers an image; true when accepted.
    pub fn submit(&mut self, stamp: SimTime, entity: Option<EntityId>, image: RgbImage, prompt: &str) -> bool {
        let too_soon = self.last.is_some_and(|t| stamp.saturating_sub(t) < self.min_interval);
        let accepted = !too_soon
            && self.in_flight == 0
            && self
                .jobs
                .as_ref()
                .is_some_and(|tx| tx.try_send(Job { stamp, entity, image, prompt: prompt.to_string() }).is_ok());
        if accepted {
            self.last = Some(stamp);
            self.in_flight += 1;
            self.submitted += 1;
        } else {
            self.refused += 1;
        }
        accepted
    }

    /// Results that arrived since the last call.
    pub fn poll(&mut self) -> Vec<Result<Description, DescribeError>> {
        let out: Vec<_> = self.results.try_iter().collect();
        self.in_flight = self.in_flight.saturating_sub(out.len());
        out
    }

    /// Waits up to `timeout` for the job in flight (end of a run).
    pub fn finish(&mut self, timeout: Duration) -> Vec<Result<Description, DescribeError>> {
        let mut out = self.poll();
        let deadline = Instant::now() + timeout;
        while self.in_flight > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok(r) => {
                    self.in_flight -= 1;
                    out.push(r);
                }
                Err(_) => break,
            }
        }
        out
    }
}

impl Drop for AsyncDescriber {
    fn drop(&mut self) {
        self.jobs.take();
        // The worker ends after its current job; do not wait for a slow model here.
        self.worker.take();
    }
}
