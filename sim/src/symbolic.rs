//! The simulator's generic model of declared skills: a small symbolic world state (ground
//! atoms such as `holding(cup)`, `at(cup, kitchen)`, `open(door1)`) that a manifest's skills
//! read (`requires`, a condition's `holds`) and change (`effects`), with a duration and a
//! success probability drawn from the run's seed. A skill declared this way runs in `arbor sim`
//! with no Rust; the photographer's skills keep their physical models (`world.rs`).

use arbor_behaviors::manifest::{Literal, SimModel, SkillManifest, Term};
use arbor_behaviors::robot::{CallId, SkillCall, SkillStatus};
use arbor_behaviors::{Params, Value};
use arbor_core::{Rng, SimTime};
use std::collections::{BTreeMap, BTreeSet};

/// A ground atom: predicate and arguments.
pub type Atom = (String, Vec<String>);

/// Parses a ground atom (`open(door1)`); `_` and `{port}` are not allowed in a fact.
pub fn parse_atom(text: &str) -> Result<Atom, String> {
    let lit = Literal::parse(text)?;
    if lit.negated {
        return Err(format!("'{text}': a fact is what holds; leave out what does not"));
    }
    let args = lit
        .args
        .iter()
        .map(|a| match a {
            Term::Const(c) => Ok(c.clone()),
            _ => Err(format!("'{text}': a fact names its arguments (no _ or {{port}})")),
        })
        .collect::<Result<_, _>>()?;
    Ok((lit.predicate, args))
}

#[derive(Debug, Clone, Default)]
pub struct Symbolic {
    facts: BTreeSet<Atom>,
    models: BTreeMap<String, SimModel>,
    rng: Option<Rng>,
    /// Calls in progress: skill and when it is done.
    active: BTreeMap<CallId, SimTime>,
    /// Output values of calls that just succeeded, until the engine takes them.
    outputs: BTreeMap<CallId, Params>,
}

impl Symbolic {
    /// The models of a manifest's skills that have no physical built-in, over `facts`.
    pub fn new(manifest: Option<&SkillManifest>, facts: &[Atom], seed: u64) -> Self {
        let models = manifest
            .map(|m| {
                m.skills
                    .iter()
                    .filter(|s| s.builtin.is_none())
                    .filter_map(|s| s.sim.clone().map(|model| (s.spec.name.clone(), model)))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            facts: facts.iter().cloned().collect(),
            models,
            rng: Some(Rng::seed_from_u64(seed ^ 0x5379_6d62_6f6c_6963)),
            active: BTreeMap::new(),
            outputs: BTreeMap::new(),
        }
    }

    pub fn models(&self, skill: &str) -> bool {
        self.models.contains_key(skill)
    }

    pub fn facts(&self) -> impl Iterator<Item = &Atom> {
        self.facts.iter()
    }

    /// Whether a literal holds for a call's parameters (`_` matches any argument).
    pub fn holds(&self, lit: &Literal, params: &Params) -> bool {
        let want = lit.ground(params);
        self.facts.iter().any(|atom| matches(atom, &lit.predicate, &want)) != lit.negated
    }

    fn apply(&mut self, lit: &Literal, params: &Params) {
        let want = lit.ground(params);
        if lit.negated {
            self.facts.retain(|atom| !matches(atom, &lit.predicate, &want));
        } else {
            let args = want.into_iter().map(Option::unwrap_or_default).collect();
            self.facts.insert((lit.predicate.clone(), args));
        }
    }

    /// Makes a fact true (a physical skill's effect: where the robot arrived).
    pub fn set(&mut self, atom: Atom, exclusive_first_arg: bool) {
        if exclusive_first_arg {
            self.facts.retain(|(p, a)| !(*p == atom.0 && a.first() == atom.1.first()));
        }
        self.facts.insert(atom);
    }

    fn unmet(&self, model: &SimModel, params: &Params) -> Vec<String> {
        model.requires.iter().filter(|l| !self.holds(l, params)).map(|l| ground_text(l, params)).collect()
    }

    pub fn start(&mut self, call: &SkillCall<'_>, now: SimTime) -> SkillStatus {
        let Some(model) = self.models.get(call.skill) else {
            return SkillStatus::Failure(format!("the simulator has no model of '{}'", call.skill));
        };
        let unmet = self.unmet(model, call.params);
        if !unmet.is_empty() {
            return SkillStatus::Failure(format!("precondition not met: {}", unmet.join(", ")));
        }
        let done = now.plus(SimTime::from_secs_f64(model.duration_s));
        self.active.insert(call.id, done);
        self.poll(call, now)
    }

    pub fn poll(&mut self, call: &SkillCall<'_>, now: SimTime) -> SkillStatus {
        let Some(&done) = self.active.get(&call.id) else {
            return SkillStatus::Failure(format!("call {} is not active (halted or never started)", call.id));
        };
        if now < done {
            return SkillStatus::Running;
        }
        self.active.remove(&call.id);
        let Some(model) = self.models.get(call.skill).cloned() else {
            return SkillStatus::Failure(format!("the simulator has no model of '{}'", call.skill));
        };
        let ok =
            model.success_probability >= 1.0 || self.rng.as_mut().is_some_and(|r| r.chance(model.success_probability));
        if !ok {
            return SkillStatus::Failure(model.failure.clone());
        }
        for e in &model.effects {
            self.apply(e, call.params);
        }
        if !model.outputs.is_empty() {
            let outs = model
                .outputs
                .iter()
                .map(|(k, v)| {
                    let text = arbor_behaviors::manifest::substitute(v, call.params);
                    let value = text.parse::<f64>().map(Value::Number).unwrap_or(match text.as_str() {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => Value::Text(text.clone()),
                    });
                    (k.clone(), value)
                })
                .collect();
            self.outputs.insert(call.id, outs);
        }
        let done: Vec<String> = model.effects.iter().map(|l| ground_text(l, call.params)).collect();
        SkillStatus::Success(if done.is_empty() { format!("{} done", call.skill) } else { done.join(", ") })
    }

    pub fn halt(&mut self, id: CallId) {
        self.active.remove(&id);
        self.outputs.remove(&id);
    }

    pub fn check(&self, call: &SkillCall<'_>) -> Option<SkillStatus> {
        let model = self.models.get(call.skill)?;
        let unmet = self.unmet(model, call.params);
        let all: Vec<String> = model.requires.iter().map(|l| ground_text(l, call.params)).collect();
        Some(if unmet.is_empty() {
            SkillStatus::Success(all.join(", "))
        } else {
            SkillStatus::Failure(format!("does not hold: {}", unmet.join(", ")))
        })
    }

    pub fn take_outputs(&mut self, id: CallId) -> Params {
        self.outputs.remove(&id).unwrap_or_default()
    }
}

/// A fact against a grounded literal's predicate and arguments (`None`: any argument).
fn matches((p, args): &Atom, predicate: &str, want: &[Option<String>]) -> bool {
    p == predicate && args.len() == want.len() && args.iter().zip(want).all(|(a, w)| w.as_ref().is_none_or(|w| w == a))
}

fn ground_text(l: &Literal, params: &Params) -> String {
    let args: Vec<String> = l.ground(params).into_iter().map(|a| a.unwrap_or_else(|| "_".into())).collect();
    format!("{}{}({})", if l.negated { "not " } else { "" }, l.predicate, args.join(", "))
}
