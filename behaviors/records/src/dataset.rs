//! Fine-tuning dataset lines in the chat `messages` form (system, user, assistant) that
//! fine-tuning tools read, with metadata about the run that produced them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetLine {
    pub messages: Vec<Message>,
    pub metadata: LineMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineMetadata {
    pub scenario: String,
    pub seed: u64,
    /// Who wrote the tree: "hand", "expert", or a model name.
    pub source: String,
    pub outcome: String,
    pub success: bool,
    pub ticks: u64,
    pub sim_time_s: f64,
    /// SHA-256 of the assistant message: identical trees share it (for deduplication).
    pub tree_sha256: String,
}

impl DatasetLine {
    pub fn new(system: String, user: String, tree_yaml: String, metadata: LineMetadata) -> Self {
        Self {
            messages: vec![
                Message { role: "system".into(), content: system },
                Message { role: "user".into(), content: user },
                Message { role: "assistant".into(), content: tree_yaml },
            ],
            metadata,
        }
    }
}

/// One run's line as the dataset builder reads it, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLine {
    /// The run directory (for provenance in the metadata).
    pub run: String,
    pub line: DatasetLine,
    /// Wall-clock figures of the run (`timing.json`), kept apart from the deterministic files.
    pub timings: Option<serde_json::Value>,
    /// Names of people in the run's scenario (what `--redact-names` replaces).
    pub names: Vec<String>,
}

/// Which outcomes go into train/val.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutcomeFilter {
    Any,
    Success,
    Failure,
}

impl std::str::FromStr for OutcomeFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "any" => Ok(Self::Any),
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            other => Err(format!("unknown outcome filter '{other}' (any, success, failure)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub outcome: OutcomeFilter,
    /// Share of prompts (not lines) that go to validation, in percent.
    pub val_percent: u32,
    pub redact_names: bool,
    /// At most this many preference pairs per prompt.
    pub max_pairs_per_prompt: usize,
    /// Replace every system message by the compact planner prompt (for fine-tuning a model
    /// that then plans with `PromptStyle::Compact`).
    pub compact_system: bool,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            outcome: OutcomeFilter::Success,
            val_percent: 10,
            redact_names: false,
            max_pairs_per_prompt: 4,
            compact_system: false,
        }
    }
}

/// A train/val line: the chat messages and the run's metadata, provenance and timings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltLine {
    pub messages: Vec<Message>,
    pub metadata: BuiltMetadata,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuiltMetadata {
    #[serde(flatten)]
    pub run: LineMetadata,
    /// The run directory the line came from.
    pub run_dir: String,
    /// Other runs with the same prompt, tree and outcome (dropped as duplicates).
    pub duplicates: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timings: Option<serde_json::Value>,
}

/// A DPO-style pair: the same prompt led to a successful and a failed tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreferencePair {
    /// The system and user messages.
    pub prompt: Vec<Message>,
    pub chosen: Vec<Message>,
    pub rejected: Vec<Message>,
    pub metadata: serde_json::Value,
}

/// What went where, for the dataset card.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BuildStats {
    pub runs_read: usize,
    pub duplicates_dropped: usize,
    pub filtered_by_outcome: usize,
    pub train: usize,
    pub val: usize,
    pub preference_pairs: usize,
    pub outcomes: BTreeMap<String, usize>,
    pub sources: BTreeMap<String, usize>,
    pub scenarios: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Built {
    pub train: Vec<BuiltLine>,
    pub val: Vec<BuiltLine>,
    pub preferences: Vec<PreferencePair>,
    pub stats: BuildStats,
}

/// Replaces each name (whole words, case-sensitive) by `person_<i>`, i by position in `names`.
pub fn redact(text: &str, names: &[String]) -> String {
    let mut out = text.to_string();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() {
            continue;
        }
        let mut res = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(pos) = rest.find(name.as_str()) {
            let before = if pos == 0 { res.chars().next_back() } else { rest[..pos].chars().next_back() };
            let after = rest[pos + name.len()..].chars().next();
            res.push_str(&rest[..pos]);
            if word(before) || word(after) {
                res.push_str(name);
            } else {
                res.push_str(&format!("person_{}", i + 1));
            }
            rest = &rest[pos + name.len()..];
        }
        res.push_str(rest);
        out = res;
    }
    out
}

fn content<'a>(messages: &'a [Message], role: &str) -> &'a str {
    messages.iter().find(|m| m.role == role).map(|m| m.content.as_str()).unwrap_or_default()
}

fn prompt_key(messages: &[Message]) -> String {
    sha256_hex(&format!("{}\n\u{1f}\n{}", content(messages, "system"), content(messages, "user")))
}

/// Builds train/val/preferences from run lines. Deterministic: the same runs (in any order)
/// give the same files. Lines are deduplicated by (prompt, tree, success); the split is by
/// prompt hash, so one prompt never lands on both sides.
pub fn build(mut runs: Vec<RunLine>, opts: &BuildOptions) -> Built {
    runs.sort_by(|a, b| a.run.cmp(&b.run));
    let mut stats = BuildStats { runs_read: runs.len(), ..BuildStats::default() };
    if opts.compact_system {
        for r in &mut runs {
            for m in &mut r.line.messages {
                if m.role == "system" {
                    m.content = arbor_planner::prompt::COMPACT_SYSTEM.to_string();
                }
            }
        }
    }
    if opts.redact_names {
        for r in &mut runs {
            let names = r.names.clone();
            for m in &mut r.line.messages {
                m.content = redact(&m.content, &names);
            }
            r.line.metadata.tree_sha256 = sha256_hex(content(&r.line.messages, "assistant"));
        }
    }
    for r in &runs {
        *stats.outcomes.entry(r.line.metadata.outcome.clone()).or_default() += 1;
        *stats.sources.entry(r.line.metadata.source.clone()).or_default() += 1;
        *stats.scenarios.entry(r.line.metadata.scenario.clone()).or_default() += 1;
    }
    let mut by_prompt: BTreeMap<String, Vec<&RunLine>> = BTreeMap::new();
    for r in &runs {
        by_prompt.entry(prompt_key(&r.line.messages)).or_default().push(r);
    }
    let mut built = Built::default();
    for (key, group) in &by_prompt {
        let mut kept: Vec<BuiltLine> = Vec::new();
        for r in group {
            let m = &r.line.metadata;
            if let Some(b) = kept
                .iter_mut()
                .find(|b| b.metadata.run.tree_sha256 == m.tree_sha256 && b.metadata.run.success == m.success)
            {
                b.metadata.duplicates += 1;
                stats.duplicates_dropped += 1;
                continue;
            }
            kept.push(BuiltLine {
                messages: r.line.messages.clone(),
                metadata: BuiltMetadata {
                    run: m.clone(),
                    run_dir: r.run.clone(),
                    duplicates: 0,
                    timings: r.timings.clone(),
                },
            });
        }
        // Preference pairs: a successful and a failed tree for this prompt.
        let ok = kept.iter().filter(|b| b.metadata.run.success);
        let pairs = ok
            .flat_map(|c| kept.iter().filter(|b| !b.metadata.run.success).map(move |r| (c, r)))
            .filter(|(c, r)| content(&c.messages, "assistant") != content(&r.messages, "assistant"))
            .take(opts.max_pairs_per_prompt);
        for (c, r) in pairs {
            let assistant = |b: &BuiltLine| b.messages.iter().filter(|m| m.role == "assistant").cloned().collect();
            built.preferences.push(PreferencePair {
                prompt: c.messages.iter().filter(|m| m.role != "assistant").cloned().collect(),
                chosen: assistant(c),
                rejected: assistant(r),
                metadata: serde_json::json!({
                    "scenario": c.metadata.run.scenario,
                    "chosen_run": c.metadata.run_dir,
                    "rejected_run": r.metadata.run_dir,
                    "rejected_outcome": r.metadata.run.outcome,
                }),
            });
        }
        let to_val = u32::from_str_radix(&key[..8], 16).unwrap_or(0) % 100 < opts.val_percent;
        for b in kept {
            let keep = match opts.outcome {
                OutcomeFilter::Any => true,
                OutcomeFilter::Success => b.metadata.run.success,
                OutcomeFilter::Failure => !b.metadata.run.success,
            };
            if !keep {
                stats.filtered_by_outcome += 1;
            } else if to_val {
                built.val.push(b);
            } else {
                built.train.push(b);
            }
        }
    }
    stats.train = built.train.len();
    stats.val = built.val.len();
    stats.preference_pairs = built.preferences.len();
    built.stats = stats;
    built
}

/// The Alpaca form (`instruction`, `input`, `output`) BTGenBot's data uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlpacaRecord {
    pub instruction: String,
    #[serde(default)]
    pub input: String,
    pub output: String,
}

impl AlpacaRecord {
    /// system -> instruction, user -> input, assistant -> output.
    pub fn from_messages(messages: &[Message]) -> Option<Self> {
        let get = |role: &str| messages.iter().find(|m| m.role == role).map(|m| m.content.clone());
        Some(Self { instruction: get("system").unwrap_or_default(), input: get("user")?, output: get("assistant")? })
    }

    pub fn to_messages(&self) -> Vec<Message> {
        vec![
            Message { role: "system".into(), content: self.instruction.clone() },
            Message { role: "user".into(), content: self.input.clone() },
            Message { role: "assistant".into(), content: self.output.clone() },
        ]
    }
}

/// Rough token count for the dataset card (no tokenizer needed): about 4 bytes per token,
/// what BPE tokenizers average on English and code.
pub fn approx_tokens(text: &str) -> usize {
    text.len().div_ceil(4)
}

/// Hex SHA-256 of a text (content ids: trees, prompts, episodes).
pub use arbor_core::digest::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;

    fn line(user: &str, tree: &str, success: bool, run: &str) -> RunLine {
        RunLine {
            run: run.into(),
            line: DatasetLine::new(
                "sys".into(),
                user.into(),
                tree.into(),
                LineMetadata {
                    scenario: "s".into(),
                    seed: 1,
                    source: "expert".into(),
                    outcome: if success { "success" } else { "failure" }.into(),
                    success,
                    ticks: 1,
                    sim_time_s: 0.1,
                    tree_sha256: sha256_hex(tree),
                },
            ),
            timings: None,
            names: vec!["alice".into(), "bob".into()],
        }
    }

    #[test]
    fn build_dedups_splits_by_prompt_and_pairs_outcomes() {
        let runs = vec![
            line("photograph alice", "T1", true, "r1"),
            line("photograph alice", "T1", true, "r2"),
            line("photograph alice", "T2", false, "r3"),
            line("photograph bob", "T3", true, "r4"),
        ];
        let b = build(runs.clone(), &BuildOptions::default());
        assert_eq!(b.stats.runs_read, 4);
        assert_eq!(b.stats.duplicates_dropped, 1);
        assert_eq!(b.stats.filtered_by_outcome, 1);
        assert_eq!(b.train.len() + b.val.len(), 2);
        assert_eq!(b.preferences.len(), 1);
        assert_eq!(b.preferences[0].chosen[0].content, "T1");
        assert_eq!(b.preferences[0].rejected[0].content, "T2");
        let mut rev = runs.clone();
        rev.reverse();
        let c = build(rev, &BuildOptions::default());
        assert_eq!(b.train, c.train);
        assert_eq!(b.val, c.val);
        let all_val = build(runs.clone(), &BuildOptions { val_percent: 100, ..BuildOptions::default() });
        assert_eq!((all_val.train.len(), all_val.val.len()), (0, 2));
        let any = build(runs, &BuildOptions { outcome: OutcomeFilter::Any, ..BuildOptions::default() });
        assert_eq!(any.train.len() + any.val.len(), 3);
    }

    #[test]
    fn redaction_replaces_whole_names_only() {
        let names = vec!["al".to_string(), "bob".to_string()];
        assert_eq!(redact("al met bob; alice and al_x stay", &names), "person_1 met person_2; alice and al_x stay");
    }

    #[test]
    fn alpaca_round_trip() {
        let l = line("u", "t", true, "r");
        let a = AlpacaRecord::from_messages(&l.line.messages).unwrap();
        assert_eq!(a.instruction, "sys");
        assert_eq!(a.to_messages(), l.line.messages);
    }

    #[test]
    fn sha_is_stable() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
