//! A minimal HTTP endpoint for Prometheus: `GET /metrics` answers the text exposition format.
//! Async, on a tokio runtime of its own (one thread, current-thread scheduler): connections are
//! served concurrently, each bounded in time (a slow or stuck client cannot hold the others
//! up), and the tick loop never waits for a scrape.

use anyhow::{Context, Result};
use arbor_behaviors::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// How long one connection may take, from accept to the last byte written.
const PER_CONNECTION: Duration = Duration::from_secs(2);

/// The running endpoint; dropping it stops the runtime and its thread.
pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port; see [`MetricsServer::addr`]) and serves.
    pub fn start(addr: &str, metrics: Arc<Metrics>) -> Result<Self> {
        let listener =
            std::net::TcpListener::bind(addr).with_context(|| format!("--metrics-addr {addr}: cannot listen"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .context("starting the metrics endpoint's tokio runtime")?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new().name("metrics-http".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                while !flag.load(Ordering::Relaxed) {
                    // Wake up now and then to see whether the server is being dropped.
                    let Ok(accepted) = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await else {
                        continue;
                    };
                    if let Ok((stream, _)) = accepted {
                        let m = metrics.clone();
                        // A broken or slow client must not stop the endpoint.
                        tokio::spawn(async move {
                            let _ = tokio::time::timeout(PER_CONNECTION, answer(stream, &m)).await;
                        });
                    }
                }
            });
        })?;
        Ok(Self { addr, stop, handle: Some(handle) })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

async fn answer(stream: tokio::net::TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut request = String::new();
    reader.read_line(&mut request).await?;
    // Drain the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).await? > 2 {
        line.clear();
    }
    let path = request.split_whitespace().nth(1).unwrap_or("");
    let (status, ctype, body) = match (request.split_whitespace().next(), path) {
        (Some("GET"), "/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        (Some("GET"), "/") => ("200 OK", "text/plain; charset=utf-8", "arbor: metrics at /metrics\n".to_string()),
        _ => ("404 Not Found", "text/plain; charset=utf-8", "not found\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    write.write_all(head.as_bytes()).await?;
    write.write_all(body.as_bytes()).await?;
    write.shutdown().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use std::io::{Read, Write};

    /// A client that connects and says nothing does not hold up a scrape behind it.
    #[test]
    fn a_silent_client_does_not_block_a_scrape() {
        let m = Arc::new(Metrics::new().unwrap());
        m.ticks.inc_by(7);
        let server = MetricsServer::start("127.0.0.1:0", m).unwrap();
        let _silent = std::net::TcpStream::connect(server.addr).unwrap();
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK") && text.contains("arbor_ticks_total 7"), "{text}");
        let mut s = std::net::TcpStream::connect(server.addr).unwrap();
        s.write_all(b"GET /nope HTTP/1.0\r\n\r\n").unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    }
}
