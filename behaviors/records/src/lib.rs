//! arbor-records: what a run leaves behind, and what is made from it.
//!
//! - [`recording`]: the run's MCAP file (header, tree, observations, tick records, ROS 2
//!   channels) and its reader;
//! - [`replay`]: re-ticks a recording's tree against its recorded skill outcomes and compares
//!   every transition;
//! - [`groot`]: Groot2 exports (`.btlog`, the TreeNodesModel XML);
//! - [`dataset`]: fine-tuning lines (chat messages + run metadata), dedup, splits.
//!
//! Above the tree model (`arbor-behaviors`) and the planner (whose system prompt a dataset line
//! carries); below the runtime and the binary.

pub mod dataset;
pub mod groot;
pub mod recording;
pub mod replay;
