//! Conditions answered from working memory. Every robot gets them through the default
//! [`crate::Robot::check`]; `register` puts them in the skill registry.

use crate::robot::{SkillCall, SkillStatus};
use crate::skill::{ParamSpec, ParamType, SkillRegistry, SkillSpec};
use crate::value::Value;
use arbor_memory::WorkingMemory;

/// Attention at or above this counts as "looking at the robot" unless a node says otherwise.
pub const DEFAULT_ATTENTION_THRESHOLD: f64 = 0.5;

/// Registers the memory-backed conditions.
pub fn register(reg: &mut SkillRegistry) {
    reg.register(SkillSpec::condition(
        "in_view",
        "succeeds if the entity is in the camera's view now",
        vec![ParamSpec::required("entity", ParamType::Entity, "who or what")],
    ));
    reg.register(SkillSpec::condition(
        "is_attending",
        "succeeds if the person is in view and looking at the robot",
        vec![
            ParamSpec::required("entity", ParamType::Entity, "the person"),
            ParamSpec::with_default(
                "threshold",
                ParamType::Number { min: 0.0, max: 1.0 },
                Value::Number(DEFAULT_ATTENTION_THRESHOLD),
                "attention score needed",
            ),
        ],
    ));
    reg.register(SkillSpec::condition(
        "was_greeted",
        "succeeds if the robot has said something to or about the entity",
        vec![ParamSpec::required("entity", ParamType::Entity, "the person")],
    ));
    reg.register(SkillSpec::condition(
        "has_seen",
        "succeeds if the entity has been seen (is in working memory)",
        vec![ParamSpec::required("entity", ParamType::Entity, "who or what")],
    ));
}

/// The conditions [`evaluate`] answers from working memory alone.
pub const MEMORY_CONDITIONS: [&str; 4] = ["in_view", "is_attending", "has_seen", "was_greeted"];

/// Whether a condition is answered from working memory alone (so replay can re-evaluate it).
pub fn is_memory_condition(skill: &str) -> bool {
    MEMORY_CONDITIONS.contains(&skill)
}

/// Answers a memory-backed condition.
pub fn evaluate(call: &SkillCall<'_>, memory: &WorkingMemory) -> SkillStatus {
    let entity = call.text("entity").unwrap_or_default();
    let state = memory.entity(entity);
    let (ok, why) = match call.skill {
        "in_view" => (state.is_some_and(|e| e.in_view), "in view"),
        "has_seen" => (state.is_some(), "seen"),
        "was_greeted" => (state.is_some_and(|e| e.greeted_at.is_some()), "greeted"),
        "is_attending" => {
            let threshold = call.number("threshold").unwrap_or(DEFAULT_ATTENTION_THRESHOLD) as f32;
            (state.is_some_and(|e| e.is_attending(threshold)), "attending")
        }
        other => return SkillStatus::Failure(format!("no condition named '{other}'")),
    };
    if ok {
        SkillStatus::Success(format!("{entity} {why}"))
    } else {
        SkillStatus::Failure(format!("{entity} not {why}"))
    }
}
