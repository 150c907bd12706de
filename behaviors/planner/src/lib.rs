//! arbor-planner: a goal in plain language becomes a checked behavior tree. Depends on the tree
//! model (`arbor-behaviors`) only for skills, the node library and the checker; nothing in the
//! engine depends on it.
//!
//! - [`format`]: the compact planning text the model writes, 1:1 with the tree model;
//! - [`grammar`]: the GBNF grammar generated from the skill registry and memory's names;
//! - [`gbnf`]: a recogniser for that grammar (tests, double checks);
//! - [`prompt`]: the system and user messages within a token budget;
//! - [`repair`]: validate-and-repair around any text generator, with a cache that answers
//!   identical requests once and figures recorded with every plan;
//! - `llm` (feature `llm`): the llama.cpp generator (llama-cpp-2);
//! - `vlm` (feature `llm`): a vision-language describer over llama.cpp's mtmd.

pub mod format;
pub mod gbnf;
pub mod grammar;
#[cfg(feature = "llm")]
pub mod llm;
pub mod prompt;
pub mod repair;
#[cfg(feature = "llm")]
pub mod vlm;

pub use prompt::{ChatPrompt, PlanContext, WorkedExample};
pub use repair::{
    Generation, Generator, PlanError, PlanFigures, PlanOutcome, PlanRecord, PlanRequest, PlanTiming, Planner, Sampling,
};
