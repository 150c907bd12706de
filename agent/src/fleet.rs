//! Fleet over MQTT (rumqttc, any MQTT 3.1.1 broker: Mosquitto here, EMQX/HiveMQ in production).
//!
//! Robot side: finished runs become episodes in an on-disk outbox first (written atomically),
//! then are published QoS 1 to `arbor/<robot>/episodes`; a file leaves the outbox only when the
//! broker acknowledged it (PUBACK). A broker outage or a killed agent loses nothing: the next
//! connection sends what is left. Status is retained on `arbor/<robot>/status` with a last will
//! "offline"; metrics go to `arbor/<robot>/metrics`; `arbor/<robot>/goals` starts runs.
//!
//! Collector side: a persistent session (clean session off, QoS 1, manual acks) subscribed to
//! `arbor/+/episodes`; an episode is acknowledged only after it is written to disk as a run
//! directory that `arbor dataset build` reads, and written once per episode id (redeliveries are
//! counted and dropped).
//!
//! Async: rumqttc's `AsyncClient` and its `EventLoop`, driven on a current-thread tokio runtime
//! per entry point ([`flush`], [`agent_loop`], [`collect`]; the node's [`Link`] runs one on its
//! own thread). Goals run synchronously between polls, as the tick must.
//!
//! Over 600 lines: the robot side, the collector and the node's link share the MQTT in-flight bookkeeping.

use anyhow::{Context, Result, bail};
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS, RecvTimeoutError,
    TlsConfiguration, Transport,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Requests (publishes, acks) a client may have queued for its event loop.
const REQUEST_CAP: usize = 1024;

/// The largest episode message (both directions).
const MAX_PACKET: usize = 8 * 1024 * 1024;

/// Where and how to reach the broker.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// `mqtt://host:port` or `mqtts://host:port` (TLS).
    pub url: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// CA certificate (PEM) that signed the broker's certificate, for `mqtts://`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// A robot's fleet settings (`--fleet robot.yaml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// Robot id: the MQTT client id and the topic segment `arbor/<robot_id>/...`.
    pub robot_id: String,
    pub broker: BrokerConfig,
    /// Directory of the on-disk outbox (episodes waiting for the broker's acknowledgement).
    pub state_dir: PathBuf,
    /// Most episodes kept waiting; beyond it new episodes are refused with a warning.
    #[serde(default = "default_max_queue")]
    pub max_queue: usize,
}

fn default_max_queue() -> usize {
    10_000
}

impl FleetConfig {
    pub fn load(path: &Path) -> Result<Self> {
        let cfg: FleetConfig = crate::yaml_file::load(path)?;
        if cfg.robot_id.is_empty() || cfg.robot_id.contains(['/', '+', '#']) {
            bail!("{}: field 'robot_id': must be non-empty without '/', '+' or '#'", path.display());
        }
        parse_url(&cfg.broker.url).with_context(|| format!("{}: field 'broker.url'", path.display()))?;
        Ok(cfg)
    }
}

/// (host, port, tls) of `mqtt://host:port` / `mqtts://host:port`.
pub fn parse_url(url: &str) -> Result<(String, u16, bool)> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        bail!("'{url}': use mqtt://host:port or mqtts://host:port");
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().with_context(|| format!("'{url}': bad port '{p}'"))?),
        None => (rest, if tls { 8883 } else { 1883 }),
    };
    if host.is_empty() {
        bail!("'{url}': no host");
    }
    Ok((host.to_string(), port, tls))
}

/// MQTT options for a client of `broker`.
pub fn options(broker: &BrokerConfig, client_id: &str, clean: bool) -> Result<MqttOptions> {
    // rustls needs a process-wide crypto provider; ring is the one built in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (host, port, tls) = parse_url(&broker.url)?;
    let mut o = MqttOptions::new(client_id, host, port);
    o.set_keep_alive(Duration::from_secs(10));
    o.set_clean_session(clean);
    o.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some(u) = &broker.username {
        o.set_credentials(u.clone(), broker.password.clone().unwrap_or_default());
    }
    if tls {
        let ca_path = broker.ca_file.as_ref().context("mqtts:// needs 'ca_file' (the CA that signed the broker)")?;
        let ca = std::fs::read(ca_path).with_context(|| format!("reading CA file {}", ca_path.display()))?;
        o.set_transport(Transport::Tls(TlsConfiguration::Simple { ca, alpn: None, client_auth: None }));
    }
    Ok(o)
}

/// A finished run as it travels to the collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    /// Stable: a hash of the robot id and the run's records; the same run always has the same id.
    pub episode_id: String,
    pub robot_id: String,
    /// Run directory files by name (the text records `arbor dataset build` and `report` read).
    pub files: BTreeMap<String, String>,
}

/// The run files an episode carries (run.mcap and memory.sqlite stay on the robot).
pub const EPISODE_FILES: [&str; 6] =
    ["dataset.jsonl", "outcome.json", "scenario.yaml", "tree.yaml", "timing.json", "plan.json"];

impl Episode {
    pub fn from_run(robot_id: &str, run: &Path) -> Result<Self> {
        let mut files = BTreeMap::new();
        for name in EPISODE_FILES {
            match std::fs::read_to_string(run.join(name)) {
                Ok(t) => {
                    files.insert(name.to_string(), t);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("reading {}", run.join(name).display())),
            }
        }
        for required in ["dataset.jsonl", "outcome.json"] {
            if !files.contains_key(required) {
                bail!("{}: not a finished run (no {required})", run.display());
            }
        }
        let key = format!(
            "{robot_id}\n{}\n{}\n{}",
            files["dataset.jsonl"],
            files["outcome.json"],
            files.get("tree.yaml").map(String::as_str).unwrap_or("")
        );
        let episode_id = arbor_records::dataset::sha256_hex(&key)[..24].to_string();
        Ok(Self { episode_id, robot_id: robot_id.to_string(), files })
    }
}

/// Writes a file so that it is either all there or not there (temp file, fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("part");
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} into place", tmp.display()))?;
    Ok(())
}

/// Episodes waiting for the broker, one file each, oldest first.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
    max: usize,
}

impl Outbox {
    pub fn open(state_dir: &Path, max: usize) -> Result<Self> {
        let dir = state_dir.join("outbox");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir, max })
    }

    /// Waiting episodes (id, path), in the order they were queued.
    pub fn pending(&self) -> Result<Vec<(String, PathBuf)>> {
        let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()).map(|s| (s, p)))
            .collect();
        v.sort();
        // "<seq>-<episode id>": the id is after the dash.
        Ok(v.into_iter().map(|(stem, p)| (stem.split_once('-').map(|x| x.1.to_string()).unwrap_or(stem), p)).collect())
    }

    /// Queues an episode (durably). Returns false (and warns) when the queue is full.
    pub fn push(&self, ep: &Episode) -> Result<bool> {
        let pending = self.pending()?;
        if pending.iter().any(|(id, _)| *id == ep.episode_id) {
            return Ok(true);
        }
        if pending.len() >= self.max {
            eprintln!(
                "warning: outbox {} is full ({} episodes waiting for the broker); episode {} is not queued",
                self.dir.display(),
                pending.len(),
                ep.episode_id
            );
            return Ok(false);
        }
        let seq = pending
            .last()
            .and_then(|(_, p)| p.file_stem()?.to_str()?.split_once('-')?.0.parse::<u64>().ok())
            .map_or(0, |n| n + 1);
        let path = self.dir.join(format!("{seq:012}-{}.json", ep.episode_id));
        write_atomic(&path, &serde_json::to_vec(ep)?)?;
        Ok(true)
    }
}

fn topic(robot: &str, leaf: &str) -> String {
    format!("arbor/{robot}/{leaf}")
}

/// What a flush did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FlushReport {
    pub acknowledged: usize,
    pub left: usize,
    /// The broker was never reached: the last connection error.
    pub unreachable: Option<String>,
}

/// Connects, publishes the robot's status and every queued episode, and waits for the
/// broker's acknowledgements until the outbox is empty or `deadline` passes.
/// Episodes on their way: queued for this connection, requested (waiting for a packet id), and
/// published (waiting for the broker's PUBACK). Fresh for every connection.
#[derive(Default)]
struct Inflight {
    queue: VecDeque<PathBuf>,
    /// In request order; None for publishes that are not episodes (status, metrics).
    requested: VecDeque<Option<PathBuf>>,
    by_pkid: HashMap<u16, PathBuf>,
}

impl Inflight {
    const WINDOW: usize = 16;

    fn idle(&self) -> bool {
        self.queue.is_empty() && self.requested.is_empty() && self.by_pkid.is_empty()
    }

    fn reload(&mut self, outbox: &Outbox) -> Result<()> {
        let busy: Vec<&PathBuf> = self.requested.iter().flatten().chain(self.by_pkid.values()).collect();
        self.queue = outbox.pending()?.into_iter().map(|(_, p)| p).filter(|p| !busy.contains(&p)).collect();
        Ok(())
    }

    /// A QoS 1 publish of ours that is not an episode was requested.
    fn other(&mut self) {
        self.requested.push_back(None);
    }

    fn on_outgoing(&mut self, pkid: u16) {
        if pkid == 0 {
            return; // QoS 0: no acknowledgement to wait for
        }
        if let Some(Some(path)) = self.requested.pop_front() {
            self.by_pkid.insert(pkid, path);
        }
    }

    /// The broker has it: the outbox file goes. Returns whether an episode was acknowledged.
    fn on_puback(&mut self, pkid: u16) -> Result<bool> {
        let Some(path) = self.by_pkid.remove(&pkid) else { return Ok(false) };
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }

    fn fill(&mut self, client: &AsyncClient, robot: &str) -> Result<()> {
        // (Never fails today: a full request queue just stops the filling until next time.)
        while self.requested.len() + self.by_pkid.len() < Self::WINDOW {
            let Some(path) = self.queue.pop_front() else { break };
            let Ok(bytes) = std::fs::read(&path) else { continue };
            if client.try_publish(topic(robot, "episodes"), QoS::AtLeastOnce, false, bytes).is_err() {
                // The request queue is full: try again after the event loop has moved.
                self.queue.push_front(path);
                break;
            }
            self.requested.push_back(Some(path));
        }
        Ok(())
    }
}

/// A connection error that retrying cannot fix.
fn fatal(url: &str, e: &rumqttc::ConnectionError) -> Option<anyhow::Error> {
    match e {
        ConnectionError::ConnectionRefused(code) => {
            Some(anyhow::anyhow!("broker {url} refused the connection: {code:?}"))
        }
        ConnectionError::Tls(_) => Some(anyhow::anyhow!("broker {url}: TLS failed: {e}")),
        _ => None,
    }
}

fn robot_options(cfg: &FleetConfig, clean: bool) -> Result<MqttOptions> {
    let mut opts = options(&cfg.broker, &cfg.robot_id, clean)?;
    opts.set_last_will(LastWill::new(topic(&cfg.robot_id, "status"), "offline", QoS::AtLeastOnce, true));
    Ok(opts)
}

/// One poll of the event loop, bounded: what the synchronous `Connection::recv_timeout` does,
/// awaited on our runtime instead of blocking on the client's own.
async fn recv_timeout(events: &mut EventLoop, d: Duration) -> Result<Result<Event, ConnectionError>, RecvTimeoutError> {
    match tokio::time::timeout(d, events.poll()).await {
        Err(_) => Err(RecvTimeoutError::Timeout),
        // Every client handle is gone: nothing more will be requested.
        Ok(Err(ConnectionError::RequestsDone)) => Err(RecvTimeoutError::Disconnected),
        Ok(polled) => Ok(polled),
    }
}

/// The fleet's async side: a current-thread tokio runtime (one per entry point or link thread).
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the fleet's tokio runtime")
}

/// Disconnects after what was requested before (acks, publishes) has gone out; at most 2 s.
async fn disconnect(client: &AsyncClient, conn: &mut EventLoop) {
    let _ = client.try_disconnect();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        match recv_timeout(conn, Duration::from_millis(200)).await {
            Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => break,
            _ => {}
        }
    }
}

/// A graceful goodbye: "offline" retained (the last will is not sent on a clean disconnect).
async fn goodbye(client: &AsyncClient, conn: &mut EventLoop, robot: &str) {
    let _ = client.try_publish(topic(robot, "status"), QoS::AtLeastOnce, true, "offline");
    disconnect(client, conn).await;
}

/// Connects, publishes the robot's status and every queued episode, and waits for the
/// broker's acknowledgements until the outbox is empty or `deadline` passes.
pub fn flush(cfg: &FleetConfig, outbox: &Outbox, status: &str, deadline: Duration) -> Result<FlushReport> {
    runtime()?.block_on(flush_async(cfg, outbox, status, deadline))
}

async fn flush_async(cfg: &FleetConfig, outbox: &Outbox, status: &str, deadline: Duration) -> Result<FlushReport> {
    let started = Instant::now();
    let mut report = FlushReport::default();
    'reconnect: while !deadline.saturating_sub(started.elapsed()).is_zero() {
        // A fresh client per connection: nothing of a dropped connection is replayed behind
        // our back; what was not acknowledged is still in the outbox and goes again.
        let (client, mut conn) = AsyncClient::new(robot_options(cfg, true)?, REQUEST_CAP);
        let mut fl = Inflight::default();
        let mut connected = false;
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            if left.is_zero() && !connected && report.unreachable.is_none() {
                report.unreachable = Some("no answer".into());
            }
            if left.is_zero() {
                break 'reconnect;
            }
            if connected && fl.idle() {
                goodbye(&client, &mut conn, &cfg.robot_id).await;
                break 'reconnect;
            }
            match recv_timeout(&mut conn, left.min(Duration::from_millis(500))).await {
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => continue 'reconnect,
                Ok(Err(e)) => {
                    if let Some(err) = fatal(&cfg.broker.url, &e) {
                        return Err(err);
                    }
                    if report.acknowledged == 0 && !connected {
                        report.unreachable = Some(e.to_string());
                    }
                    // Unreachable or dropped: try again shortly, until the deadline.
                    tokio::time::sleep(Duration::from_millis(200).min(deadline.saturating_sub(started.elapsed())))
                        .await;
                    continue 'reconnect;
                }
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    connected = true;
                    report.unreachable = None;
                    client.try_publish(topic(&cfg.robot_id, "status"), QoS::AtLeastOnce, true, status.as_bytes())?;
                    fl.other();
                    fl.reload(outbox)?;
                }
                Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => fl.on_outgoing(pkid),
                Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    report.acknowledged += usize::from(fl.on_puback(ack.pkid)?);
                }
                Ok(Ok(_)) => {}
            }
            if connected {
                fl.fill(&client, &cfg.robot_id)?;
            }
        }
    }
    report.left = outbox.pending()?.len();
    Ok(report)
}

/// A goal received on `arbor/<robot>/goals`: plain text, or JSON with an optional tree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteGoal {
    pub goal: String,
    /// A tree (arbor YAML) to run for the goal instead of asking the planner.
    #[serde(default)]
    pub tree: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
}

impl RemoteGoal {
    pub fn parse(payload: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(payload).context("the goal is not UTF-8")?.trim();
        if text.starts_with('{') {
            serde_json::from_str(text)
                .context("a JSON goal is {\"goal\": \"...\", \"tree\"?: \"<yaml>\", \"seed\"?: n}")
        } else if text.is_empty() {
            bail!("empty goal")
        } else {
            Ok(Self { goal: text.to_string(), tree: None, seed: None })
        }
    }
}

/// How the owner of a long-running [`agent_loop`] on another thread steers it.
#[derive(Debug, Clone, Default)]
pub struct LoopControl {
    /// Set: say "offline", disconnect and return.
    pub stop: Arc<AtomicBool>,
    /// Set by whoever pushed episodes to the outbox: the loop sends them.
    pub outbox_changed: Arc<AtomicBool>,
}

/// The robot's long-running connection: status, metrics, remote goals and the outbox.
/// `run_goal` executes a goal and returns the finished run directory (queued here as an
/// episode), `None` when the goal was handed on (the ROS node runs it in its own loop and queues
/// the episode itself, then sets `control.outbox_changed`), or an error to report.
pub fn agent_loop(
    cfg: &FleetConfig,
    outbox: &Outbox,
    metrics_every: Duration,
    exit_when_idle: Option<Duration>,
    control: &LoopControl,
    run_goal: impl FnMut(&RemoteGoal) -> Result<Option<PathBuf>>,
    metrics: impl FnMut() -> serde_json::Value,
) -> Result<()> {
    runtime()?.block_on(agent_loop_async(cfg, outbox, metrics_every, exit_when_idle, control, run_goal, metrics))
}

async fn agent_loop_async(
    cfg: &FleetConfig,
    outbox: &Outbox,
    metrics_every: Duration,
    exit_when_idle: Option<Duration>,
    control: &LoopControl,
    mut run_goal: impl FnMut(&RemoteGoal) -> Result<Option<PathBuf>>,
    mut metrics: impl FnMut() -> serde_json::Value,
) -> Result<()> {
    let mut backoff = Duration::from_millis(200);
    let mut idle_since = Instant::now();
    loop {
        // Persistent session: goals sent while the robot was away are delivered on return.
        let (client, mut conn) = AsyncClient::new(robot_options(cfg, false)?, REQUEST_CAP);
        let mut fl = Inflight::default();
        let mut connected = false;
        let mut last_metrics = Instant::now();
        loop {
            if control.stop.load(Ordering::SeqCst) {
                goodbye(&client, &mut conn, &cfg.robot_id).await;
                return Ok(());
            }
            if let Some(limit) = exit_when_idle
                && connected
                && fl.idle()
                && idle_since.elapsed() >= limit
            {
                goodbye(&client, &mut conn, &cfg.robot_id).await;
                return Ok(());
            }
            if connected && control.outbox_changed.swap(false, Ordering::SeqCst) {
                fl.reload(outbox)?;
            }
            match recv_timeout(&mut conn, Duration::from_millis(250)).await {
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Ok(Err(e)) => {
                    if let Some(err) = fatal(&cfg.broker.url, &e) {
                        return Err(err);
                    }
                    if connected {
                        eprintln!("fleet: connection to {} lost ({e}); reconnecting", cfg.broker.url);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    break;
                }
                Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    connected = true;
                    backoff = Duration::from_millis(200);
                    client.try_publish(topic(&cfg.robot_id, "status"), QoS::AtLeastOnce, true, "online")?;
                    fl.other();
                    if !ack.session_present {
                        client.try_subscribe(topic(&cfg.robot_id, "goals"), QoS::AtLeastOnce)?;
                    }
                    fl.reload(outbox)?;
                }
                Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => fl.on_outgoing(pkid),
                Ok(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    fl.on_puback(ack.pkid)?;
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    idle_since = Instant::now();
                    let status = match RemoteGoal::parse(&p.payload).and_then(|g| {
                        let _ = client.try_publish(
                            topic(&cfg.robot_id, "status"),
                            QoS::AtMostOnce,
                            true,
                            format!("busy: {}", g.goal),
                        );
                        match run_goal(&g)? {
                            Some(run) => {
                                let ep = Episode::from_run(&cfg.robot_id, &run)?;
                                outbox.push(&ep)?;
                                Ok(format!("online (last episode {})", ep.episode_id))
                            }
                            None => Ok(format!("online (goal accepted: {})", g.goal)),
                        }
                    }) {
                        Ok(status) => status,
                        Err(e) => {
                            eprintln!("fleet: goal on {}: {e:#}", p.topic);
                            format!("online (last goal failed: {e})")
                        }
                    };
                    client.try_publish(topic(&cfg.robot_id, "status"), QoS::AtLeastOnce, true, status)?;
                    fl.other();
                    fl.reload(outbox)?;
                }
                Ok(Ok(_)) => {}
            }
            if connected {
                if last_metrics.elapsed() >= metrics_every {
                    last_metrics = Instant::now();
                    let mut m = metrics();
                    m["outbox"] = serde_json::json!(outbox.pending()?.len());
                    client.try_publish(topic(&cfg.robot_id, "metrics"), QoS::AtMostOnce, false, m.to_string())?;
                }
                fl.fill(&client, &cfg.robot_id)?;
                if !fl.idle() {
                    idle_since = Instant::now();
                }
            }
        }
    }
}

/// Counts of a collector session.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct CollectReport {
    pub received: u64,
    pub written: u64,
    pub duplicates: u64,
    pub invalid: u64,
    /// The broker was never reached: the last connection error.
    pub unreachable: Option<String>,
}

/// Writes an episode as `<out>/<robot>/<episode id>/` (atomically: a temp dir renamed into place).
/// Returns false when it was already there (a redelivery).
fn write_episode(out: &Path, ep: &Episode) -> Result<bool> {
    let safe =
        |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) && s != "..";
    if !safe(&ep.robot_id) || !safe(&ep.episode_id) {
        bail!("episode with an unsafe robot or episode id");
    }
    let dir = out.join(&ep.robot_id).join(&ep.episode_id);
    if dir.join("outcome.json").is_file() {
        return Ok(false);
    }
    let tmp = out.join(&ep.robot_id).join(format!(".{}.part", ep.episode_id));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    for (name, text) in &ep.files {
        if !EPISODE_FILES.contains(&name.as_str()) {
            continue;
        }
        write_atomic(&tmp.join(name), text.as_bytes())?;
    }
    std::fs::rename(&tmp, &dir).with_context(|| format!("moving {} into place", dir.display()))?;
    Ok(true)
}

/// Collects episodes into `out` until `stop` says so (checked between messages).
pub fn collect(
    broker: &BrokerConfig,
    client_id: &str,
    out: &Path,
    stop: impl FnMut(&CollectReport, Duration) -> bool,
) -> Result<CollectReport> {
    runtime()?.block_on(collect_async(broker, client_id, out, stop))
}

async fn collect_async(
    broker: &BrokerConfig,
    client_id: &str,
    out: &Path,
    mut stop: impl FnMut(&CollectReport, Duration) -> bool,
) -> Result<CollectReport> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut report = CollectReport::default();
    let mut last_message = Instant::now();
    let mut backoff = Duration::from_millis(100);
    'reconnect: loop {
        let mut opts = options(broker, client_id, false)?;
        opts.set_manual_acks(true);
        let (client, mut conn): (AsyncClient, EventLoop) = AsyncClient::new(opts, REQUEST_CAP);
        let mut unacked: VecDeque<rumqttc::Publish> = VecDeque::new();
        loop {
            while let Some(p) = unacked.pop_front() {
                if client.try_ack(&p).is_err() {
                    unacked.push_front(p);
                    break;
                }
            }
            if stop(&report, last_message.elapsed()) {
                // Let the acknowledgements queued so far reach the broker before leaving, or
                // the persistent session would deliver those episodes again next time.
                disconnect(&client, &mut conn).await;
                return Ok(report);
            }
            match recv_timeout(&mut conn, Duration::from_millis(200)).await {
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => continue 'reconnect,
                Ok(Err(e)) => {
                    if let ConnectionError::ConnectionRefused(code) = &e {
                        bail!("broker {} refused the connection: {code:?}", broker.url);
                    }
                    if matches!(e, ConnectionError::Tls(_)) {
                        bail!("broker {}: TLS failed: {e}", broker.url);
                    }
                    // Said once per kind of failure, then retried quietly with backoff.
                    let why = e.to_string();
                    if report.unreachable.as_deref() != Some(why.as_str()) {
                        eprintln!("collect   cannot reach {}: {why} (retrying)", broker.url);
                        report.unreachable = Some(why);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue 'reconnect;
                }
                Ok(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    backoff = Duration::from_millis(100);
                    report.unreachable = None;
                    if !ack.session_present {
                        client.try_subscribe("arbor/+/episodes", QoS::AtLeastOnce)?;
                    }
                }
                Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                    report.received += 1;
                    last_message = Instant::now();
                    match serde_json::from_slice::<Episode>(&p.payload) {
                        Ok(ep) => match write_episode(out, &ep) {
                            Ok(true) => report.written += 1,
                            Ok(false) => report.duplicates += 1,
                            Err(e) => {
                                report.invalid += 1;
                                eprintln!("warning: {}: {e:#}", p.topic);
                            }
                        },
                        Err(e) => {
                            report.invalid += 1;
                            eprintln!("warning: {}: not an episode: {e}", p.topic);
                        }
                    }
                    // Acknowledge only now: the episode is on disk (or will never be usable).
                    unacked.push_back(p);
                }
                Ok(Ok(_)) => {}
            }
        }
    }
}

/// A robot's fleet connection on its own thread, for an owner with its own loop (the ROS 2
/// node): remote goals come out of [`Link::goals`], finished runs go in with [`Link::queue_run`]
/// (into the outbox at once, on the wire when the broker is there), status and metrics are
/// published every `metrics_every`.
#[cfg_attr(not(feature = "ros2"), allow(dead_code, reason = "the ROS 2 node's"))]
pub struct Link {
    pub cfg: FleetConfig,
    outbox: Outbox,
    control: LoopControl,
    goals: std::sync::mpsc::Receiver<RemoteGoal>,
    metrics: Arc<std::sync::Mutex<serde_json::Value>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

#[cfg_attr(not(feature = "ros2"), allow(dead_code, reason = "the ROS 2 node's"))]
impl Link {
    pub fn start(cfg: FleetConfig, metrics_every: Duration) -> Result<Self> {
        let outbox = Outbox::open(&cfg.state_dir, cfg.max_queue)?;
        let thread_outbox = outbox.clone();
        let control = LoopControl::default();
        let (tx, goals) = std::sync::mpsc::sync_channel(16);
        let metrics = Arc::new(std::sync::Mutex::new(serde_json::json!({ "robot": cfg.robot_id })));
        let (c, m, thread_cfg) = (control.clone(), metrics.clone(), cfg.clone());
        let handle = std::thread::Builder::new().name("fleet".into()).spawn(move || {
            let run_goal = |g: &RemoteGoal| -> Result<Option<PathBuf>> {
                tx.try_send(g.clone()).map_err(|e| anyhow::anyhow!("the robot cannot take the goal now: {e}"))?;
                Ok(None)
            };
            let metrics = || m.lock().map(|v| v.clone()).unwrap_or_default();
            if let Err(e) = agent_loop(&thread_cfg, &thread_outbox, metrics_every, None, &c, run_goal, metrics) {
                eprintln!("arbor: fleet: {e:#} (episodes stay in {})", thread_cfg.state_dir.display());
            }
        })?;
        Ok(Self { cfg, outbox, control, goals, metrics, handle: Some(handle) })
    }

    /// Remote goals received since the last call.
    pub fn goals(&self) -> Vec<RemoteGoal> {
        self.goals.try_iter().collect()
    }

    /// Queues a finished run's episode (on disk first) and has the link send it.
    pub fn queue_run(&self, run: &Path) -> Result<String> {
        let ep = Episode::from_run(&self.cfg.robot_id, run)?;
        self.outbox.push(&ep)?;
        self.control.outbox_changed.store(true, Ordering::SeqCst);
        Ok(ep.episode_id)
    }

    /// What the next metrics message says.
    pub fn set_metrics(&self, v: serde_json::Value) {
        if let Ok(mut m) = self.metrics.lock() {
            *m = v;
        }
    }
}

impl Drop for Link {
    /// Says "offline" and disconnects (at most a few seconds); what was not sent stays queued.
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
