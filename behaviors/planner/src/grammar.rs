//! A GBNF grammar for the planning format, generated from what the robot can do: the
//! control nodes and decorators offered to the planner, every registered skill with its
//! parameters (names, enum values, numeric shapes), and the names of places and entities
//! memory knows. Whatever a model writes under it parses as a tree over real skills with
//! well-typed parameters; the checker then validates ranges and semantics.
//!
//! Depth is bounded (nested rules `node0`..`nodeN`) and so are child counts and text
//! lengths, so a generation cannot run away inside one construct.

use arbor_behaviors::skill::{ParamType, SkillRegistry, Vocabulary};

/// The control nodes and decorators the planner may use (YAML names) and their port syntax.
pub const PLAN_CONTROLS: [&str; 4] = ["sequence", "fallback", "reactive_sequence", "reactive_fallback"];

#[derive(Debug, Clone)]
pub struct GrammarOptions {
    /// Deepest nesting of control nodes and decorators.
    pub max_depth: usize,
    /// Most children per control node.
    pub max_children: usize,
    /// Longest free text (e.g. `say`), characters.
    pub max_text: usize,
    /// Whether the model may answer `refuse("reason")`.
    pub allow_refusal: bool,
}

impl Default for GrammarOptions {
    fn default() -> Self {
        // Depth 5: "for each person, if they look at the robot, photograph them" is
        // sequence > force_success > sequence > retry > sequence > leaf (5 composites); at
        // depth 4 the grammar could not write it, and every model planning under it wrote a
        // cut-down tree instead (`retry(num_attempts=4, wait(seconds=0.5))`). Each level and
        // each allowed child costs sampling time (depth 6 with 12 children: 60 tokens/s
        // against 66 here), so no deeper than the trees arbor writes.
        Self { max_depth: 5, max_children: 8, max_text: 60, allow_refusal: true }
    }
}

fn lit(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn rule_name(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect()
}

/// A name the planning format writes bare (a word), or quoted if it has other characters.
fn name_lit(n: &str) -> String {
    if !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        lit(n)
    } else {
        lit(&format!("\"{n}\""))
    }
}

fn alternatives(names: &[String]) -> String {
    if names.is_empty() {
        // Nothing known: no value can be written (the skill is effectively unusable).
        return "[\\x00]".into();
    }
    names.iter().map(|n| name_lit(n)).collect::<Vec<_>>().join(" | ")
}

/// Exact alternatives for the integers in [lo, hi] written in decimal (0 <= lo <= hi).
pub fn int_range(lo: u64, hi: u64) -> String {
    fn same_len(a: &[u8], b: &[u8]) -> String {
        // a <= b, same length, digits as ASCII.
        if a.is_empty() {
            return String::new();
        }
        if a == b {
            return lit(std::str::from_utf8(a).unwrap_or(""));
        }
        let (fa, fb) = (a[0], b[0]);
        let rest = a.len() - 1;
        let any = |n: usize| if n == 0 { String::new() } else { format!(" [0-9]{{{n}}}") };
        if fa == fb {
            return format!("{} ({})", lit(&(fa as char).to_string()), same_len(&a[1..], &b[1..]));
        }
        let mut alts = Vec::new();
        let all_zero = a[1..].iter().all(|c| *c == b'0');
        let all_nine = b[1..].iter().all(|c| *c == b'9');
        let (mut from, mut to) = (fa, fb);
        if !all_zero {
            alts.push(format!("{} ({})", lit(&(fa as char).to_string()), same_len(&a[1..], &vec![b'9'; rest])));
            from += 1;
        }
        if !all_nine {
            alts.push(format!("{} ({})", lit(&(fb as char).to_string()), same_len(&vec![b'0'; rest], &b[1..])));
            to -= 1;
        }
        if from <= to {
            alts.push(format!("[{}-{}]{}", from as char, to as char, any(rest)));
        }
        alts.join(" | ")
    }
    let mut alts = Vec::new();
    let digits = |n: u64| n.to_string().len();
    for d in digits(lo)..=digits(hi) {
        let start = if d == digits(lo) { lo } else { 10u64.pow(d as u32 - 1) };
        let end = if d == digits(hi) { hi } else { 10u64.pow(d as u32) - 1 };
        if start <= end {
            alts.push(
                format!("({})", same_len(start.to_string().as_bytes(), end.to_string().as_bytes())).replace("()", ""),
            );
        }
    }
    alts.join(" | ")
}

/// A number in [min, max]: exact when both bounds are whole and non-negative (with one
/// optional decimal below `max` unless `int`); otherwise digits the checker range-checks.
fn number_rule(min: f64, max: f64, int: bool) -> String {
    let whole = |x: f64| x.fract() == 0.0 && (0.0..=1e6).contains(&x);
    if whole(min) && whole(max) && min <= max {
        let (lo, hi) = (min as u64, max as u64);
        if int || lo == hi {
            return int_range(lo, hi);
        }
        let below = if hi > lo { format!("({}) (\".\" [0-9])?", int_range(lo, hi - 1)) } else { String::new() };
        return format!("{below} | {}", lit(&hi.to_string()));
    }
    let digits = if max.is_finite() { (max.abs().max(1.0).log10().floor() as usize + 1).min(6) } else { 6 };
    let sign = if min < 0.0 { "\"-\"? " } else { "" };
    let int_part = format!("[0-9]{{1,{digits}}}");
    if int { format!("{sign}{int_part}") } else { format!("{sign}{int_part} (\".\" [0-9]{{1,2}})?") }
}

fn line(g: &mut String, s: impl AsRef<str>) {
    let s = s.as_ref();
    g.push_str(s);
    g.push('\n');
}

/// Generates the grammar (root rule `root`).
pub fn generate(registry: &SkillRegistry, vocab: &Vocabulary, opts: &GrammarOptions) -> String {
    let mut g = String::new();
    let depth = opts.max_depth.max(1);
    if opts.allow_refusal {
        line(&mut g, "root ::= node0 | \"refuse(\" text \")\"");
    } else {
        line(&mut g, "root ::= node0");
    }
    let places: Vec<String> = vocab.places.clone();
    let entities: Vec<String> = vocab.entities.clone();
    let mut targets = places.clone();
    targets.extend(entities.iter().cloned());
    line(&mut g, format!("place ::= {}", alternatives(&places)));
    line(&mut g, format!("entity ::= {}", alternatives(&entities)));
    line(&mut g, format!("target ::= {}", alternatives(&targets)));
    line(&mut g, format!("text ::= \"\\\"\" [a-zA-Z0-9 ,.!?'-]{{0,{}}} \"\\\"\"", opts.max_text));
    // A pose as BT.CPP writes one: "x;y" or "x;y;yaw" (only where a skill takes one).
    if registry.iter().any(|s| s.params.iter().any(|p| p.ty == ParamType::Pose)) {
        line(&mut g, "pose ::= \"\\\"\" coord \";\" coord (\";\" coord)? \"\\\"\"");
        line(&mut g, "coord ::= \"-\"? [0-9] [0-9]? [0-9]? (\".\" [0-9] [0-9]?)?");
    }
    line(&mut g, "bool ::= \"true\" | \"false\"");
    line(&mut g, "count ::= [1-9] | \"10\"");
    // Skills: one rule each, parameters in declaration order, optional ones optional.
    let mut leaves = Vec::new();
    for spec in registry.iter() {
        let r = format!("skill-{}", rule_name(&spec.name));
        let value = |ty: &ParamType| match ty {
            ParamType::Entity => "entity".to_string(),
            ParamType::Place => "place".to_string(),
            ParamType::Target => "target".to_string(),
            ParamType::Bool => "bool".to_string(),
            // JSON values reach a skill from the blackboard; the planner writes plain text.
            ParamType::Text { .. } | ParamType::Script | ParamType::Json => "text".to_string(),
            ParamType::Pose => "pose".to_string(),
            ParamType::Enum { values } => format!("({})", alternatives(values)),
            ParamType::Number { min, max } => format!("({})", number_rule(*min, *max, false)),
            ParamType::Int { min, max } => format!("({})", number_rule(*min, *max, true)),
        };
        let term = |p: &arbor_behaviors::skill::ParamSpec| format!("{} {}", lit(&format!("{}=", p.name)), value(&p.ty));
        let required: Vec<String> = spec.params.iter().filter(|p| p.required).map(term).collect();
        // Optional numbers whose bounds are not whole are left to their defaults: the grammar
        // could not keep them in range exactly.
        let exact = |p: &&arbor_behaviors::skill::ParamSpec| match p.ty {
            ParamType::Number { min, max } => min.fract() == 0.0 && max.fract() == 0.0 && min >= 0.0,
            _ => true,
        };
        let optional: Vec<String> = spec.params.iter().filter(|p| !p.required).filter(exact).map(term).collect();
        // Parameters in declaration order, required first; ", " only between present ones.
        let mut body = required.join(" \", \" ");
        if required.is_empty() && !optional.is_empty() {
            // Any optional may come first; later ones follow it with a separator.
            let firsts: Vec<String> = (0..optional.len())
                .map(|i| {
                    let rest: String = optional[i + 1..].iter().map(|o| format!(" (\", \" {o})?")).collect();
                    format!("{}{rest}", optional[i])
                })
                .collect();
            body = format!("({})?", firsts.join(" | "));
        } else {
            for o in &optional {
                body.push_str(&format!(" (\", \" {o})?"));
            }
        }
        line(&mut g, format!("{r} ::= {} {} \")\"", lit(&format!("{}(", spec.name)), body.trim()));
        leaves.push(r);
    }
    line(
        &mut g,
        format!("leaf ::= {}", if leaves.is_empty() { "\"always_success()\"".to_string() } else { leaves.join(" | ") }),
    );
    for d in 0..depth {
        let next = format!("node{}", d + 1);
        let controls: Vec<String> = PLAN_CONTROLS
            .iter()
            .map(|c| {
                format!(
                    "{} {next} (\", \" {next}){{0,{}}} \")\"",
                    lit(&format!("{c}(")),
                    opts.max_children.saturating_sub(1)
                )
            })
            .collect();
        let decorators = [
            format!("\"force_success(\" {next} \")\""),
            format!("\"inverter(\" {next} \")\""),
            format!("\"retry(num_attempts=\" count \", \" {next} \")\""),
        ];
        line(&mut g, format!("node{d} ::= leaf | {} | {}", controls.join(" | "), decorators.join(" | ")));
    }
    line(&mut g, format!("node{depth} ::= leaf"));
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{self, Plan};
    use crate::gbnf::Grammar;
    use arbor_behaviors::skill::{ParamSpec, SkillSpec};
    use arbor_behaviors::{NodeLibrary, Value};
    use arbor_core::Rng;

    fn registry() -> SkillRegistry {
        let mut r = SkillRegistry::new();
        r.register(SkillSpec::action(
            "navigate_to",
            "go",
            vec![
                ParamSpec::required("target", ParamType::Target, ""),
                ParamSpec::with_default("speed", ParamType::Number { min: 0.05, max: 2.0 }, Value::Number(0.8), ""),
            ],
        ));
        r.register(SkillSpec::action(
            "capture_photo",
            "photo",
            vec![ParamSpec::optional("entity", ParamType::Entity, "")],
        ));
        r.register(SkillSpec::action(
            "say",
            "speak",
            vec![ParamSpec::required("text", ParamType::Text { max_len: 200 }, "")],
        ));
        r.register(SkillSpec::action(
            "wait",
            "wait",
            vec![ParamSpec::required("seconds", ParamType::Number { min: 0.0, max: 600.0 }, "")],
        ));
        r.register(SkillSpec::action("scan", "look around", vec![]));
        r.register(SkillSpec::action(
            "set_mode",
            "mode",
            vec![
                ParamSpec::optional("mode", ParamType::Enum { values: vec!["quiet".into(), "loud".into()] }, ""),
                ParamSpec::optional("count", ParamType::Int { min: 1.0, max: 12.0 }, ""),
            ],
        ));
        arbor_behaviors::conditions::register(&mut r);
        r
    }

    fn vocab() -> Vocabulary {
        Vocabulary { places: vec!["kitchen".into(), "office".into()], entities: vec!["alice".into(), "bob".into()] }
    }

    #[test]
    fn integer_ranges_are_exact() {
        for (lo, hi) in [(0, 600), (1, 10), (0, 9), (5, 5), (13, 287), (1, 100), (99, 1001)] {
            let g = Grammar::parse(&format!("root ::= {}", int_range(lo, hi))).unwrap();
            for n in 0..1200u64 {
                assert_eq!(g.accepts(&n.to_string()), (lo..=hi).contains(&n), "{lo}..{hi}: {n}");
            }
            assert!(!g.accepts("007"));
        }
    }

    #[test]
    fn derived_strings_parse_and_validate() {
        let reg = registry();
        let text = generate(&reg, &vocab(), &GrammarOptions::default());
        let g = Grammar::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let lib = NodeLibrary::with_skills(&reg);
        let mut rng = Rng::seed_from_u64(3);
        let mut trees = 0;
        for _ in 0..400 {
            let s = g.sample(&mut rng, 6);
            assert!(g.accepts(&s), "sampled but not accepted: {s}");
            match format::parse(&s, &lib, "t", None).unwrap_or_else(|e| panic!("{e}")) {
                Plan::Tree(t) => {
                    t.check("plan", &lib, Some(&vocab()), false).unwrap_or_else(|e| panic!("{s}: {e}"));
                    trees += 1;
                }
                Plan::Refused(_) => {}
            }
        }
        assert!(trees > 100, "{trees}");
    }

    #[test]
    fn unknown_skills_params_and_names_do_not_match() {
        let reg = registry();
        let g = Grammar::parse(&generate(&reg, &vocab(), &GrammarOptions::default())).unwrap();
        for ok in [
            "navigate_to(target=kitchen)",
            "sequence(navigate_to(target=alice), capture_photo(entity=alice), say(text=\"hi there\"))",
            "retry(num_attempts=3, fallback(is_attending(entity=bob), scan()))",
            "wait(seconds=600)",
            "wait(seconds=0.5)",
            "set_mode(count=12)",
            "set_mode(mode=loud, count=3)",
            "capture_photo()",
            "refuse(\"I cannot run shell commands\")",
        ] {
            assert!(g.accepts(ok), "{ok}");
        }
        for bad in [
            "fly_to(target=kitchen)",
            "navigate_to(destination=kitchen)",
            "navigate_to(target=garage)",
            "capture_photo(entity=kitchen)",
            "wait(seconds=601)",
            "wait(seconds=600.5)",
            "set_mode(count=13)",
            "set_mode(mode=medium)",
            "navigate_to(target=kitchen, speed=9)",
            "sequence()",
            "run_shell(cmd=\"rm -rf /\")",
            "say(text=\"unterminated)",
        ] {
            assert!(!g.accepts(bad), "{bad}");
        }
    }
}
