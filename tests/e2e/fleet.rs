//! The fleet over a real Mosquitto, started by the tests on 127.0.0.1 with a free port and
//! stopped by PID: publish -> collect -> dataset build; a broker outage in the middle of a
//! stream; an agent killed with SIGKILL while episodes wait; a password file; TLS with a CA
//! made in the test.

use crate::mosquitto::{Broker, free_port};
use crate::{SCENARIO, TREE, arbor, root, stderr, stdout};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn fleet_file(dir: &Path, robot: &str, broker_yaml: &str) -> PathBuf {
    let path = dir.join(format!("{robot}.yaml"));
    let state = dir.join(format!("state-{robot}"));
    std::fs::write(&path, format!("robot_id: {robot}\nbroker: {broker_yaml}\nstate_dir: {}\n", state.display()))
        .unwrap();
    path
}

fn sim_publish(dir: &Path, fleet: &Path, seed: u64, timeout: &str) -> Output {
    let out = dir.join(format!("runs/{}-{seed}", fleet.file_stem().unwrap().to_string_lossy()));
    arbor(&[
        "sim",
        "--scenario",
        SCENARIO,
        "--tree",
        TREE,
        "--seed",
        &seed.to_string(),
        "--out",
        out.to_str().unwrap(),
        "--fleet",
        fleet.to_str().unwrap(),
        "--publish-timeout",
        timeout,
    ])
}

fn spawn_arbor(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().ok();
            let o = child.wait_with_output().unwrap();
            panic!("timed out after {limit:?}\nstdout:\n{}\nstderr:\n{}", stdout(&o), stderr(&o));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Episode ids in a collector's output directory.
fn collected(out: &Path) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for robot in std::fs::read_dir(out).map(|r| r.flatten().collect::<Vec<_>>()).unwrap_or_default() {
        for ep in std::fs::read_dir(robot.path()).unwrap().flatten() {
            let name = ep.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') {
                assert!(ep.path().join("outcome.json").is_file() && ep.path().join("dataset.jsonl").is_file());
                ids.insert(name);
            }
        }
    }
    ids
}

fn outbox_len(dir: &Path, robot: &str) -> usize {
    std::fs::read_dir(dir.join(format!("state-{robot}/outbox")))
        .map(|r| r.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "json")).count())
        .unwrap_or(0)
}

#[test]
fn episodes_go_through_the_broker_into_a_dataset_even_across_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut broker) = Broker::start(dir.path(), "") else { return };
    let url = broker.url();
    let fleet = fleet_file(dir.path(), "robot-1", &format!("{{url: \"{url}\"}}"));
    let out = dir.path().join("collected");
    // The collector: persistent session, exits once 10 new episodes are on disk.
    let collector = spawn_arbor(&[
        "collect",
        "--broker",
        &url,
        "-o",
        out.to_str().unwrap(),
        "--client-id",
        "col-1",
        "--exit-after",
        "10",
    ]);
    std::thread::sleep(Duration::from_millis(500));

    for seed in 0..10u64 {
        if seed == 4 {
            broker.stop();
        }
        if seed == 7 {
            broker.restart();
        }
        let o = sim_publish(dir.path(), &fleet, seed, if (4..7).contains(&seed) { "0.5" } else { "10" });
        assert!(o.status.success(), "{}", stderr(&o));
        if (4..7).contains(&seed) {
            assert!(stdout(&o).contains("queued"), "{}", stdout(&o));
            assert_eq!(outbox_len(dir.path(), "robot-1"), seed as usize - 3, "episodes wait on disk");
        } else {
            assert!(stdout(&o).contains("delivered"), "{}", stdout(&o));
        }
    }
    assert_eq!(outbox_len(dir.path(), "robot-1"), 0);
    let o = wait_output(collector, Duration::from_secs(90));
    assert!(o.status.success(), "{}", stderr(&o));
    let ids = collected(&out);
    assert_eq!(ids.len(), 10, "{ids:?}\n{}", stdout(&o));
    println!("outage: {}", stdout(&o).lines().last().unwrap_or_default());

    // The same run again (same episode id): the collector drops the redelivery.
    let collector = spawn_arbor(&[
        "collect",
        "--broker",
        &url,
        "-o",
        out.to_str().unwrap(),
        "--client-id",
        "col-1",
        "--idle-exit",
        "3",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let o = sim_publish(dir.path(), &fleet, 0, "10");
    assert!(stdout(&o).contains("delivered"), "{}", stdout(&o));
    let o = wait_output(collector, Duration::from_secs(30));
    assert!(stdout(&o).contains("0 episode(s)") && stdout(&o).contains("1 duplicates dropped"), "{}", stdout(&o));
    assert_eq!(collected(&out).len(), 10);

    // What the collector wrote is a dataset.
    let ds = dir.path().join("ds");
    let o = arbor(&[
        "dataset",
        "build",
        out.to_str().unwrap(),
        "-o",
        ds.to_str().unwrap(),
        "--outcome",
        "any",
        "--val-percent",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Ten seeds of one goal and one tree: one line, nine duplicates by content.
    assert!(
        stdout(&o).contains("read 10 runs: 1 train") && stdout(&o).contains("9 duplicates dropped"),
        "{}",
        stdout(&o)
    );
    assert_eq!(std::fs::read_to_string(ds.join("train.jsonl")).unwrap().lines().count(), 1);

    // The robot's retained status says it went away cleanly.
    let status = retained(&url, "arbor/robot-1/status");
    assert_eq!(status.as_deref(), Some("offline"));
}

/// The retained message on a topic, read with a client of our own.
fn retained(url: &str, topic: &str) -> Option<String> {
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let opts = rumqttc::MqttOptions::new("test-reader", "127.0.0.1", port);
    let (client, mut conn) = rumqttc::Client::new(opts, 10);
    client.subscribe(topic, rumqttc::QoS::AtLeastOnce).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)))) =
            conn.recv_timeout(Duration::from_millis(200))
        {
            return Some(String::from_utf8_lossy(&p.payload).into_owned());
        }
    }
    None
}

fn publish(url: &str, topic: &str, payload: &str) {
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let opts = rumqttc::MqttOptions::new("test-publisher", "127.0.0.1", port);
    let (client, mut conn) = rumqttc::Client::new(opts, 10);
    client.publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))) =
            conn.recv_timeout(Duration::from_millis(200))
        {
            return;
        }
    }
    panic!("no PUBACK for the goal");
}

#[test]
fn an_agent_killed_with_queued_episodes_delivers_them_after_restart_and_runs_remote_goals() {
    let dir = tempfile::tempdir().unwrap();
    // The broker does not run yet: episodes queue on disk.
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let fleet = fleet_file(dir.path(), "robot-2", &format!("{{url: \"{url}\"}}"));
    for seed in 0..3 {
        let o = sim_publish(dir.path(), &fleet, seed, "0.3");
        assert!(stdout(&o).contains("queued"), "{}", stdout(&o));
    }
    assert_eq!(outbox_len(dir.path(), "robot-2"), 3);
    // The agent starts, cannot reach the broker, and is killed with SIGKILL.
    let scenario = root().join(SCENARIO);
    let runs = dir.path().join("agent-runs");
    let agent_args = [
        "agent",
        "--fleet",
        fleet.to_str().unwrap(),
        "--scenario",
        scenario.to_str().unwrap(),
        "--out-root",
        runs.to_str().unwrap(),
    ];
    let mut agent = spawn_arbor(&agent_args);
    std::thread::sleep(Duration::from_millis(800));
    agent.kill().unwrap();
    agent.wait().unwrap();
    assert_eq!(outbox_len(dir.path(), "robot-2"), 3, "nothing lost by the kill");

    // Now the broker (on the port the robot knows), a collector, and the agent again.
    let bdir = dir.path().join("b");
    std::fs::create_dir_all(&bdir).unwrap();
    let Some(_broker) = Broker::start_on(&bdir, "", port) else { return };
    let out = dir.path().join("collected");
    // The collector's persistent session (and its subscription) exists before any robot
    // publishes: a first short connection subscribes and leaves. Otherwise the agent, started
    // right after, could flush its queue before the collector had subscribed, and the broker
    // would drop those episodes (a race seen once on a loaded machine).
    let o = arbor(&["collect", "--broker", &url, "-o", out.to_str().unwrap(), "--idle-exit", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let collector = spawn_arbor(&["collect", "--broker", &url, "-o", out.to_str().unwrap(), "--exit-after", "4"]);
    let mut args = agent_args.to_vec();
    args.extend(["--exit-when-idle", "4", "--metrics-every", "1"]);
    let agent = spawn_arbor(&args);
    // A remote goal with its tree (no planner needed): once the agent is online.
    let deadline = Instant::now() + Duration::from_secs(20);
    while retained(&url, "arbor/robot-2/status").is_none_or(|s| !s.starts_with("online")) {
        assert!(Instant::now() < deadline, "the agent never came online");
    }
    let tree = std::fs::read_to_string(root().join(TREE)).unwrap();
    publish(
        &url,
        "arbor/robot-2/goals",
        &serde_json::json!({"goal": "photograph each person who looks at the robot", "tree": tree, "seed": 7})
            .to_string(),
    );
    let o = wait_output(agent, Duration::from_secs(60));
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("-> success"), "{}", stdout(&o));
    let c = wait_output(collector, Duration::from_secs(30));
    assert_eq!(collected(&out).len(), 4, "{}", stdout(&c));
    assert_eq!(outbox_len(dir.path(), "robot-2"), 0);
}

#[test]
fn a_password_file_refuses_anonymous_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    let st = Command::new("mosquitto_passwd").args(["-c", "-b", pw.to_str().unwrap(), "robot", "s3cret"]).status();
    if st.is_err() {
        assert!(std::env::var_os("CI").is_none(), "no mosquitto_passwd");
        return;
    }
    let conf = format!("listener PORT 127.0.0.1\nallow_anonymous false\npassword_file {}\n", pw.display());
    let Some(broker) = Broker::start(dir.path(), &conf) else { return };
    let url = broker.url();
    let o = arbor(&["collect", "--broker", &url, "-o", dir.path().join("c").to_str().unwrap(), "--idle-exit", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("refused the connection"), "{}", stderr(&o));
    let bad = fleet_file(dir.path(), "robot-3", &format!("{{url: \"{url}\", username: robot, password: wrong}}"));
    let o = sim_publish(dir.path(), &bad, 1, "5");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("refused the connection"), "{}", stderr(&o));
    let good = fleet_file(dir.path(), "robot-4", &format!("{{url: \"{url}\", username: robot, password: s3cret}}"));
    let o = sim_publish(dir.path(), &good, 1, "10");
    assert!(stdout(&o).contains("delivered"), "{}\n{}", stdout(&o), stderr(&o));
}

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl").args(args).current_dir(dir).output().unwrap();
    assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

/// A CA and a server certificate for localhost, made here.
fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name} test CA"),
            "-keyout",
            &format!("{name}-ca.key"),
            "-out",
            &format!("{name}-ca.pem"),
        ],
    );
}

#[test]
fn tls_with_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "no openssl");
        return;
    }
    make_ca(d, "good");
    make_ca(d, "other");
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(d.join("san.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "good-ca.pem",
            "-CAkey",
            "good-ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
    let conf = format!(
        "listener PORT 127.0.0.1\nallow_anonymous true\ncafile {0}/good-ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\n",
        d.display()
    );
    let Some(broker) = Broker::start(d, &conf) else { return };
    let url = format!("mqtts://localhost:{}", broker.port);
    let out = d.join("c");
    let collector = spawn_arbor(&[
        "collect",
        "--broker",
        &url,
        "--ca-file",
        d.join("good-ca.pem").to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--exit-after",
        "1",
    ]);
    let good = fleet_file(d, "robot-5", &format!("{{url: \"{url}\", ca_file: \"{}/good-ca.pem\"}}", d.display()));
    let o = sim_publish(d, &good, 1, "10");
    assert!(stdout(&o).contains("delivered"), "{}\n{}", stdout(&o), stderr(&o));
    let c = wait_output(collector, Duration::from_secs(30));
    assert_eq!(collected(&out).len(), 1, "{}", stderr(&c));
    // A client that trusts another CA does not talk to this broker.
    let wrong = fleet_file(d, "robot-6", &format!("{{url: \"{url}\", ca_file: \"{}/other-ca.pem\"}}", d.display()));
    let o = sim_publish(d, &wrong, 1, "5");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("TLS"), "{}", stderr(&o));
}

/// No broker listening: `fleet-flush` and `collect` say the connection was refused (once, not
/// per retry) and exit 1, instead of reporting 0 episodes as if all were well.
#[test]
fn no_broker_is_said_not_silently_retried() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let url = format!("mqtt://127.0.0.1:{port}");
    let fleet = dir.path().join("robot.yaml");
    std::fs::write(
        &fleet,
        format!("robot_id: r1\nbroker: {{url: \"{url}\"}}\nstate_dir: {}\n", dir.path().join("state").display()),
    )
    .unwrap();
    let o = arbor(&["fleet-flush", "--fleet", fleet.to_str().unwrap(), "--timeout", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains("could not reach the broker") && stderr(&o).contains("refused"), "{}", stderr(&o));
    let out = dir.path().join("collected");
    let o = arbor(&["collect", "--broker", &url, "-o", out.to_str().unwrap(), "--idle-exit", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(err.contains("cannot reach") && err.contains("refused"), "{err}");
    assert_eq!(err.matches("cannot reach").count(), 1, "said once: {err}");
}
