//! The planner's prompt: a system message (format, skills with one-line descriptions, one
//! example) and a user message (the goal and what memory knows), within a token budget.

use arbor_behaviors::skill::{ParamType, SkillKind, SkillRegistry};
use serde::{Deserialize, Serialize};

/// What memory knows when planning starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanContext {
    pub places: Vec<String>,
    pub people: Vec<String>,
    pub objects: Vec<String>,
    /// Entities in view now, most relevant first.
    pub in_view: Vec<String>,
    /// Recent events, newest first, one line each.
    pub recent_events: Vec<String>,
    /// What long-term memory retrieved for this goal (episodes and facts, in time order),
    /// already fitted to a token budget by the memory's context builder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remembered: Vec<String>,
    /// Worked examples shown before the goal, e.g. retrieved from a dataset by goal similarity;
    /// they have their own budget ([`EXAMPLES_BUDGET_CHARS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<WorkedExample>,
}

/// One worked example: a goal, what memory knew then about the people its goal names (so that
/// the example shows why its plan goes where it goes, not only where), and the plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkedExample {
    pub goal: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remembered: Vec<String>,
    pub plan: String,
}

impl WorkedExample {
    pub fn new(goal: impl Into<String>, plan: impl Into<String>) -> Self {
        WorkedExample { goal: goal.into(), remembered: Vec::new(), plan: plan.into() }
    }
}

/// Characters of worked examples a prompt may carry (about 800 tokens).
pub const EXAMPLES_BUDGET_CHARS: usize = 3200;

/// Which system message the planner sends. `Full` documents the format and every skill (what a
/// general instruction model needs); `Compact` is one sentence, for models fine-tuned on arbor's
/// own dataset (they learned the format and skills; a short prompt trains and plans faster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptStyle {
    #[default]
    Full,
    Compact,
}

impl std::str::FromStr for PromptStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(PromptStyle::Full),
            "compact" => Ok(PromptStyle::Compact),
            other => Err(format!("unknown prompt style '{other}' (full or compact)")),
        }
    }
}

/// The system message of [`PromptStyle::Compact`].
pub const COMPACT_SYSTEM: &str =
    "You plan for a mobile robot. Answer with one behavior tree in arbor's plan format, or refuse(\"reason\").";

/// The system message for a style.
pub fn system_for(style: PromptStyle, registry: &SkillRegistry) -> String {
    match style {
        PromptStyle::Full => system_prompt(registry),
        PromptStyle::Compact => COMPACT_SYSTEM.to_string(),
    }
}

/// The two messages of a chat prompt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatPrompt {
    pub system: String,
    pub user: String,
}

fn param_doc(p: &arbor_behaviors::skill::ParamSpec) -> String {
    let ty = match &p.ty {
        ParamType::Entity => "person or object".to_string(),
        ParamType::Place => "place".to_string(),
        ParamType::Target => "place or person".to_string(),
        ParamType::Text { .. } | ParamType::Script => "\"text\"".to_string(),
        ParamType::Pose => "\"x;y;yaw\"".to_string(),
        ParamType::Json => "\"json\"".to_string(),
        ParamType::Number { min, max } | ParamType::Int { min, max } => format!("{min}..{max}"),
        ParamType::Bool => "true|false".to_string(),
        ParamType::Enum { values } => values.join("|"),
    };
    format!("{}={ty}{}", p.name, if p.required { "" } else { "?" })
}

/// The system message: the format, every skill, one example.
pub fn system_prompt(registry: &SkillRegistry) -> String {
    let mut s = String::from(
        "You plan for a mobile robot. Answer with one behavior tree in this format, nothing else:\n\
node(arguments). Controls: sequence(a, b, ...) runs children in order until one fails; \
fallback(a, b, ...) tries children until one succeeds. Decorators: force_success(a), inverter(a), \
retry(num_attempts=N, a).\nActions:\n",
    );
    let mut conditions = String::new();
    for spec in registry.iter() {
        let params: Vec<String> = spec
            .params
            .iter()
            .filter(|p| p.required || !matches!(p.ty, ParamType::Number { .. }))
            .map(param_doc)
            .collect();
        let line = format!("- {}({}): {}\n", spec.name, params.join(", "), spec.description);
        if spec.kind == SkillKind::Condition { conditions.push_str(&line) } else { s.push_str(&line) }
    }
    s.push_str("Conditions (succeed or fail at once):\n");
    s.push_str(&conditions);
    s.push_str(
        "Use only the places, people and objects the user lists. If the goal cannot be done with these \
skills, answer refuse(\"reason\").\nExample:\nGoal: greet bob in the office\n\
Plan: sequence(navigate_to(target=office), fallback(has_seen(entity=bob), scan()), navigate_to(target=bob), say(text=\"Hello bob\"))\n",
    );
    s
}

/// Appends items (comma-separated) while the budget lasts.
fn list(items: &[String], budget: &mut usize) -> String {
    let mut out = Vec::new();
    for it in items {
        let cost = it.len() + 2;
        if cost > *budget {
            break;
        }
        *budget -= cost;
        out.push(it.as_str());
    }
    if out.is_empty() { "none".into() } else { out.join(", ") }
}

/// The user message, fitted into `budget_chars` (about 4 characters a token): names first,
/// then what is in view, then recent events as long as they fit.
pub fn user_prompt(goal: &str, cx: &PlanContext, budget_chars: usize) -> String {
    let mut budget = budget_chars.saturating_sub(goal.len() + 64);
    let places = list(&cx.places, &mut budget);
    let people = list(&cx.people, &mut budget);
    let objects = list(&cx.objects, &mut budget);
    let mut s = examples_block(&cx.examples);
    s.push_str(&format!("Goal: {goal}\nPlaces: {places}\nPeople: {people}\nObjects: {objects}\n"));
    if !cx.in_view.is_empty() {
        s.push_str(&format!("In view: {}\n", list(&cx.in_view, &mut budget)));
    }
    for (title, lines) in [("Recent events", &cx.recent_events), ("Remembered", &cx.remembered)] {
        bulleted(&mut s, title, lines, &mut budget);
    }
    s.push_str("Plan:");
    s
}

/// The worked examples as the user message begins with them ("Example:\nGoal: ..\n" then its
/// "Remembered:\n- .." lines when it has any, then "Plan: ..\n\n", each), within
/// [`EXAMPLES_BUDGET_CHARS`]; an example that does not fit is left out. The dataset builder
/// writes training prompts with examples through this too, so a model trained with retrieved
/// examples sees them at planning time in the very same form.
pub fn examples_block(examples: &[WorkedExample]) -> String {
    let mut s = String::new();
    let mut budget = EXAMPLES_BUDGET_CHARS;
    for e in examples {
        let mut block = format!("Example:\nGoal: {}\n", e.goal);
        // The example's own lines are whole or the example is left out (the budget check below).
        let mut unlimited = usize::MAX;
        bulleted(&mut block, "Remembered", &e.remembered, &mut unlimited);
        block.push_str(&format!("Plan: {}\n\n", e.plan));
        if block.len() > budget {
            continue;
        }
        budget -= block.len();
        s.push_str(&block);
    }
    s
}

/// Appends "title:" and one "- line" per line while the budget lasts (nothing when none fits).
fn bulleted(s: &mut String, title: &str, lines: &[String], budget: &mut usize) {
    let mut out = Vec::new();
    for e in lines {
        if e.len() + 3 > *budget {
            break;
        }
        *budget -= e.len() + 3;
        out.push(format!("- {e}"));
    }
    if !out.is_empty() {
        s.push_str(&format!("{title}:\n{}\n", out.join("\n")));
    }
}

/// The whole prompt for a goal.
pub fn build(registry: &SkillRegistry, goal: &str, cx: &PlanContext, budget_chars: usize) -> ChatPrompt {
    build_styled(PromptStyle::Full, registry, goal, cx, budget_chars)
}

/// The whole prompt for a goal, in a given style.
pub fn build_styled(
    style: PromptStyle,
    registry: &SkillRegistry,
    goal: &str,
    cx: &PlanContext,
    budget_chars: usize,
) -> ChatPrompt {
    ChatPrompt { system: system_for(style, registry), user: user_prompt(goal, cx, budget_chars) }
}

/// The repair prompt after a plan failed its checks.
pub fn repair(prompt: &ChatPrompt, previous: &str, error: &str) -> ChatPrompt {
    ChatPrompt {
        system: prompt.system.clone(),
        user: format!(
            "{}\n(Your previous plan `{previous}` was rejected: {error}. Write a corrected plan.)\nPlan:",
            prompt.user.trim_end_matches("Plan:").trim_end()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_prompt_has_examples_events_and_memory_within_budget() {
        let cx = PlanContext {
            places: vec!["kitchen".into()],
            people: vec!["bob".into()],
            recent_events: vec!["bob came into view".into()],
            remembered: vec!["[t=3.0s] bob was seen in the kitchen".into(), "x".repeat(500)],
            examples: vec![
                WorkedExample {
                    goal: "photograph ann".into(),
                    remembered: vec!["ann was last seen in the lobby".into()],
                    plan: "capture_photo(entity=ann)".into(),
                },
                WorkedExample::new("x".repeat(4000), "too long"),
            ],
            ..Default::default()
        };
        let p = user_prompt("photograph bob", &cx, 400);
        let at = |needle: &str| p.find(needle).unwrap_or_else(|| panic!("{needle:?} missing in {p}"));
        assert!(
            at(
                "Example:\nGoal: photograph ann\nRemembered:\n- ann was last seen in the lobby\nPlan: capture_photo(entity=ann)\n\n"
            ) < at("Goal: photograph bob")
        );
        assert!(!p.contains("too long"), "an example over the examples budget is left out");
        assert!(at("Recent events:\n- bob came into view\n") < at("Remembered:\n- [t=3.0s] bob was seen"));
        assert!(!p.contains(&"x".repeat(500)), "over budget: left out");
        assert!(p.ends_with("Plan:"));
        let compact = build_styled(PromptStyle::Compact, &SkillRegistry::default(), "g", &cx, 400);
        assert_eq!(compact.system, COMPACT_SYSTEM);
        assert_eq!("compact".parse::<PromptStyle>(), Ok(PromptStyle::Compact));
        assert!("short".parse::<PromptStyle>().unwrap_err().contains("full or compact"));
    }
}
