//! A Mosquitto of a test's own on 127.0.0.1 (a free port, config, persistence and log in the
//! test's temp dir), stopped by PID. Shared by the e2e and ROS 2 test binaries (`#[path]`).

#![allow(dead_code, reason = "each test binary uses its part")]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A Mosquitto of our own: its config, persistence and log in a temp dir.
pub struct Broker {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    conf: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Broker {
    /// `listener` lines are added by the caller when it needs TLS or a password file.
    pub fn start(dir: &Path, extra: &str) -> Option<Broker> {
        Self::start_on(dir, extra, free_port())
    }

    pub fn start_on(dir: &Path, extra: &str, port: u16) -> Option<Broker> {
        if !Path::new(MOSQUITTO).is_file() {
            assert!(std::env::var_os("CI").is_none(), "no mosquitto: run `bash .ci/setup`");
            eprintln!("skipped: no mosquitto (bash .ci/setup installs it)");
            return None;
        }
        let dir = dir.join("broker");
        std::fs::create_dir_all(&dir).unwrap();
        let listener = if extra.contains("listener") {
            extra.replace("PORT", &port.to_string())
        } else {
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}")
        };
        // Run as root (as here), Mosquitto would switch to the `mosquitto` user, which cannot
        // read our temp dirs: stay who we are.
        let me = Command::new("id")
            .arg("-un")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        let user = if me.is_empty() { String::new() } else { format!("user {me}\n") };
        let conf = format!(
            "{user}{listener}\npersistence true\npersistence_location {}/\nautosave_interval 1\n",
            dir.display()
        );
        let mut b = Broker { child: None, port, dir, conf };
        b.restart();
        Some(b)
    }

    pub fn restart(&mut self) {
        let conf_path = self.dir.join("mosquitto.conf");
        std::fs::write(&conf_path, &self.conf).unwrap();
        let log = std::fs::File::create(self.dir.join("log.txt")).unwrap();
        let child =
            Command::new(MOSQUITTO).arg("-c").arg(&conf_path).stdout(Stdio::null()).stderr(log).spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen: {}",
                std::fs::read_to_string(self.dir.join("log.txt")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (Mosquitto saves its sessions), then wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
