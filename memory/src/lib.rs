//! arbor-memory: what the robot remembers.
//!
//! - [`working`]: small and current: the goal, the entities in view, recent events.
//! - [`episodic`]: an append-only record of what happened, persisted in SQLite (WAL) on disk,
//!   with full-text search (FTS5).
//! - [`semantic`]: facts and entity profiles distilled from episodes (incremental, idempotent).
//! - [`embed`]: text embeddings (all-MiniLM-L6-v2 on ONNX Runtime).
//! - [`index`]: the vector index (int8, IVF above a size) for top-k by meaning.
//! - [`store`]: [`Memory`], all of the above over one database, with hybrid retrieval for the
//!   planner, a context builder, question answering and forgetting.

pub mod embed;
pub mod episodic;
pub mod index;
pub mod semantic;
pub mod store;
pub mod working;

pub use embed::{Embedder, MiniLm};
pub use episodic::{EpisodicStore, Event, EventKind, MemoryError, Stored};
pub use semantic::{Fact, Profile};
pub use store::{Answer, Item, Memory, Query, QuestionKind, Retrieved, Weights, build_context};
pub use working::{EntityState, WorkingConfig, WorkingMemory};
