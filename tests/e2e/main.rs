//! End-to-end tests over the whole runtime: the `arbor` binary on the shipped scenario.
//! One test binary (declared in agent/Cargo.toml so it can run the `arbor` executable).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod camera;
mod cli_errors;
mod dataset;
mod eval;
mod fleet;
mod launch_files;
mod memory;
#[path = "../common/mosquitto.rs"]
mod mosquitto;
mod observability;
#[cfg(feature = "llm")]
mod planner_llm;
#[path = "../common/prom.rs"]
mod prom;
mod recording;
mod sim_runs;
mod tree_cli;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (tests run with the package's directory as cwd).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn arbor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arbor")).args(args).current_dir(root()).output().expect("arbor runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub const SCENARIO: &str = "sim/scenarios/photographer.yaml";
pub const TREE: &str = "sim/trees/photographer.yaml";
