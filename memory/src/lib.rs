//! arbor-memory: what the robot remembers.
//!
//! - [`working`]: small and current: the goal, the entities in view, recent events.
//! - [`episodic`]: an append-only record of what happened, persisted in SQLite (WAL) on disk.
//!
//! Semantic memory (facts, profiles, embeddings) builds on the episodic log in a later step.

pub mod episodic;
pub mod working;

pub use episodic::{EpisodicStore, Event, EventKind, MemoryError};
pub use working::{EntityState, WorkingMemory};
