//! Reading Prometheus text scrapes in tests: which metric families a scrape declares, and which
//! of them moved. Shared by the e2e and ROS 2 test binaries (`#[path]`).

#![allow(dead_code, reason = "each test binary uses its part")]

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

/// Metric family names in a scrape (`# TYPE <name> <kind>` lines).
pub fn families(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(String::from)
        .collect()
}

/// The families of a scrape with a sample above zero (a counter, a gauge, a histogram's count).
pub fn moved(m: &str) -> BTreeSet<String> {
    families(m)
        .into_iter()
        .filter(|family| {
            m.lines().filter(|l| !l.starts_with('#')).any(|l| {
                let name = l.split(['{', ' ']).next().unwrap_or("");
                let ours = name == family || name.strip_prefix(family.as_str()).is_some_and(|r| r == "_count");
                ours && l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0)
            })
        })
        .collect()
}

/// The value of one sample (`name{labels}`), if the scrape has it.
pub fn sample(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok()))
}

/// `GET /metrics` on 127.0.0.1:`port`: the body, or None while nothing answers.
pub fn try_scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}
