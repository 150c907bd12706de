//! Working memory: the goal, what is in view now, what was seen recently, recent events.
//! Bounded ([`WorkingConfig`]): entities not seen for `forget_after_s` are dropped; beyond
//! `entities` the lowest-scored entity out of view is evicted (score = salience x recency);
//! events are a ring buffer of `events`.

use crate::episodic::{Event, EventKind};
use arbor_core::{EntityId, EntityKind, Observation, Point2, SimTime};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// What working memory believes about one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityState {
    pub id: EntityId,
    pub kind: EntityKind,
    pub label: String,
    pub position: Point2,
    pub first_seen: SimTime,
    pub last_seen: SimTime,
    /// Seen in the latest perception frame.
    pub in_view: bool,
    /// Smoothed attention score (people only), exponential moving average over frames in view.
    pub attention: Option<f32>,
    pub times_seen: u64,
    /// When the robot last said something naming this entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub greeted_at: Option<SimTime>,
    /// When the robot last photographed this entity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photographed_at: Option<SimTime>,
}

impl EntityState {
    /// Attention above the threshold, hysteresis-free (the attention model adds hysteresis).
    pub fn is_attending(&self, threshold: f32) -> bool {
        self.in_view && self.attention.is_some_and(|a| a >= threshold)
    }

    /// How much this entity matters regardless of time: people over objects, attention,
    /// how often seen, and whether the robot interacted with it.
    pub fn salience(&self) -> f32 {
        let base = if self.kind == EntityKind::Person { 1.0 } else { 0.5 };
        let interacted = if self.greeted_at.is_some() || self.photographed_at.is_some() { 0.5 } else { 0.0 };
        base + 0.5 * self.attention.unwrap_or(0.0) + 0.1 * (1.0 + self.times_seen as f32).ln() + interacted
    }

    /// Salience decayed by time since last seen (halving every `half_life_s`).
    pub fn score(&self, now: SimTime, half_life_s: f64) -> f32 {
        let age = now.saturating_sub(self.last_seen).as_secs_f64();
        self.salience() * 0.5f64.powf(age / half_life_s.max(1e-6)) as f32
    }
}

/// Bounds of working memory (scenario/robot configuration: `memory:` in a scenario file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkingConfig {
    /// Most entities held; beyond it the lowest-scored entity out of view is evicted.
    pub entities: usize,
    /// Recent events held (ring buffer).
    pub events: usize,
    /// Entities out of view this long are dropped.
    pub forget_after_s: f64,
    /// Recency half-life of the eviction score.
    pub half_life_s: f64,
}

impl Default for WorkingConfig {
    fn default() -> Self {
        Self { entities: 64, events: 32, forget_after_s: 600.0, half_life_s: 60.0 }
    }
}

impl WorkingConfig {
    /// Checks the values; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.entities == 0 {
            return Err("memory.entities must be at least 1".into());
        }
        if self.events == 0 {
            return Err("memory.events must be at least 1".into());
        }
        if !(self.forget_after_s.is_finite() && self.forget_after_s > 0.0) {
            return Err(format!("memory.forget_after_s must be > 0, got {}", self.forget_after_s));
        }
        if !(self.half_life_s.is_finite() && self.half_life_s > 0.0) {
            return Err(format!("memory.half_life_s must be > 0, got {}", self.half_life_s));
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct WorkingMemory {
    goal: Option<String>,
    entities: BTreeMap<EntityId, EntityState>,
    recent: VecDeque<Event>,
    recent_capacity: usize,
    forget_after: SimTime,
    /// Weight of the newest frame in the attention average.
    attention_alpha: f32,
    capacity: usize,
    half_life_s: f64,
    evicted: u64,
}

impl Default for WorkingMemory {
    fn default() -> Self {
        Self::with_config(&WorkingConfig::default())
    }
}

/// Entities entering or leaving view in one update: these become episodic events.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewChanges {
    pub appeared: Vec<EntityId>,
    pub disappeared: Vec<EntityId>,
}

impl WorkingMemory {
    pub fn new(recent_capacity: usize, forget_after: SimTime) -> Self {
        let d = WorkingConfig::default();
        Self {
            goal: None,
            entities: BTreeMap::new(),
            recent: VecDeque::with_capacity(recent_capacity),
            recent_capacity: recent_capacity.max(1),
            forget_after,
            attention_alpha: 0.5,
            capacity: d.entities,
            half_life_s: d.half_life_s,
            evicted: 0,
        }
    }

    pub fn with_config(cfg: &WorkingConfig) -> Self {
        let mut me = Self::new(cfg.events, SimTime::from_secs_f64(cfg.forget_after_s.max(0.0)));
        me.capacity = cfg.entities.max(1);
        me.half_life_s = cfg.half_life_s;
        me
    }

    /// Entities evicted for capacity so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    pub fn set_goal(&mut self, goal: impl Into<String>) {
        self.goal = Some(goal.into());
    }

    pub fn goal(&self) -> Option<&str> {
        self.goal.as_deref()
    }

    /// Folds one perception frame into memory. Returns which entities came into and went
    /// out of view.
    pub fn update(&mut self, now: SimTime, observations: &[Observation]) -> ViewChanges {
        let mut changes = ViewChanges::default();
        let mut seen: Vec<&EntityId> = Vec::with_capacity(observations.len());
        for o in observations {
            seen.push(&o.entity);
            match self.entities.get_mut(&o.entity) {
                Some(e) => {
                    if !e.in_view {
                        changes.appeared.push(o.entity.clone());
                        // A person coming back into view starts a fresh attention estimate.
                        e.attention = o.attention;
                    } else {
                        e.attention = match (e.attention, o.attention) {
                            (Some(prev), Some(a)) => Some(prev + self.attention_alpha * (a - prev)),
                            (_, a) => a,
                        };
                    }
                    e.position = o.position;
                    e.last_seen = o.stamp;
                    e.in_view = true;
                    e.times_seen += 1;
                    e.label.clone_from(&o.label);
                }
                None => {
                    changes.appeared.push(o.entity.clone());
                    self.entities.insert(
                        o.entity.clone(),
                        EntityState {
                            id: o.entity.clone(),
                            kind: o.kind,
                            label: o.label.clone(),
                            position: o.position,
                            first_seen: o.stamp,
                            last_seen: o.stamp,
                            in_view: true,
                            attention: o.attention,
                            times_seen: 1,
                            greeted_at: None,
                            photographed_at: None,
                        },
                    );
                }
            }
        }
        for (id, e) in self.entities.iter_mut() {
            if e.in_view && !seen.contains(&id) {
                e.in_view = false;
                changes.disappeared.push(id.clone());
            }
        }
        let forget_after = self.forget_after;
        self.entities.retain(|_, e| e.in_view || now.saturating_sub(e.last_seen) < forget_after);
        while self.entities.len() > self.capacity {
            // The lowest score out of view goes first; if everything is in view, the least salient.
            let victim = self
                .entities
                .values()
                .min_by(|a, b| {
                    (a.in_view, a.score(now, self.half_life_s))
                        .partial_cmp(&(b.in_view, b.score(now, self.half_life_s)))
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .map(|e| e.id.clone());
            let Some(victim) = victim else { break };
            self.entities.remove(&victim);
            self.evicted += 1;
        }
        changes
    }

    /// Puts back entities as a recording found them at the start of a run (replay).
    pub fn restore_entities(&mut self, entities: impl IntoIterator<Item = EntityState>) {
        for e in entities {
            self.entities.insert(e.id.clone(), e);
        }
    }

    pub fn entity(&self, id: &str) -> Option<&EntityState> {
        self.entities.get(&EntityId::new(id))
    }

    /// All remembered entities, ordered by id.
    pub fn entities(&self) -> impl Iterator<Item = &EntityState> {
        self.entities.values()
    }

    pub fn in_view(&self) -> impl Iterator<Item = &EntityState> {
        self.entities.values().filter(|e| e.in_view)
    }

    /// Remembers an event in the bounded recent-events buffer.
    pub fn push_event(&mut self, event: Event) {
        match event.kind {
            EventKind::PhotoTaken => {
                if let Some(e) = event.entity.as_ref().and_then(|id| self.entities.get_mut(id)) {
                    e.photographed_at = Some(event.t);
                }
            }
            EventKind::Said => {
                let words: Vec<String> = crate::episodic::words(&event.text).collect();
                for e in self.entities.values_mut() {
                    if event.entity.as_ref() == Some(&e.id) || words.iter().any(|w| *w == e.id.as_str().to_lowercase())
                    {
                        e.greeted_at = Some(event.t);
                    }
                }
            }
            _ => {}
        }
        if self.recent.len() == self.recent_capacity {
            self.recent.pop_front();
        }
        self.recent.push_back(event);
    }

    pub fn recent_events(&self) -> impl Iterator<Item = &Event> {
        self.recent.iter()
    }

    pub fn len(&self) -> usize {
        self.entities.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(t: u64, id: &str, att: f32) -> Observation {
        Observation {
            stamp: SimTime(t),
            entity: EntityId::new(id),
            kind: EntityKind::Person,
            label: "person".into(),
            position: Point2::new(1.0, 2.0),
            range: 2.0,
            bearing: 0.0,
            confidence: 0.9,
            attention: Some(att),
            sigma: None,
        }
    }

    #[test]
    fn tracks_view_changes_and_smooths_attention() {
        let mut wm = WorkingMemory::new(4, SimTime::from_secs_f64(10.0));
        let c = wm.update(SimTime(0), &[obs(0, "alice", 1.0), obs(0, "bob", 0.0)]);
        assert_eq!(c.appeared, vec![EntityId::new("alice"), EntityId::new("bob")]);
        let c = wm.update(SimTime(100), &[obs(100, "alice", 0.0)]);
        assert_eq!(c.disappeared, vec![EntityId::new("bob")]);
        let alice = wm.entity("alice").unwrap();
        assert_eq!(alice.attention, Some(0.5));
        assert!(alice.is_attending(0.5));
        assert!(!wm.entity("bob").unwrap().in_view);
        assert_eq!(wm.in_view().count(), 1);
    }

    #[test]
    fn forgets_unseen_entities_and_bounds_events() {
        let mut wm = WorkingMemory::new(2, SimTime::from_secs_f64(1.0));
        wm.update(SimTime(0), &[obs(0, "alice", 1.0)]);
        wm.update(SimTime::from_secs_f64(0.5), &[]);
        assert_eq!(wm.len(), 1);
        wm.update(SimTime::from_secs_f64(2.0), &[]);
        assert!(wm.is_empty());
        for i in 0..5 {
            wm.push_event(Event::new(SimTime(i), EventKind::Said, format!("e{i}")));
        }
        let texts: Vec<_> = wm.recent_events().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["e3", "e4"]);
    }

    #[test]
    fn evicts_the_lowest_scored_entity_out_of_view_beyond_capacity() {
        let cfg = WorkingConfig { entities: 3, ..WorkingConfig::default() };
        let mut wm = WorkingMemory::with_config(&cfg);
        let mut mug = obs(0, "mug", 0.0);
        mug.kind = EntityKind::Object;
        mug.attention = None;
        wm.update(SimTime(0), &[obs(0, "alice", 1.0), obs(0, "bob", 0.0), mug]);
        wm.push_event(Event::new(SimTime(1), EventKind::Said, "Hello bob!"));
        assert!(wm.entity("bob").unwrap().greeted_at.is_some());
        assert!(wm.entity("alice").unwrap().greeted_at.is_none());
        // All three leave view; carol arrives: the mug (an object, least salient) goes.
        wm.update(SimTime(10), &[]);
        wm.update(SimTime(20), &[obs(20, "carol", 0.2)]);
        assert_eq!(wm.len(), 3);
        assert!(wm.entity("mug").is_none());
        assert_eq!(wm.evicted(), 1);
        // Next: between alice (attending) and bob (greeted), recency and salience decide; carol,
        // in view, stays.
        wm.update(SimTime(30), &[obs(30, "carol", 0.2), obs(30, "dave", 0.0)]);
        assert!(wm.entity("carol").is_some() && wm.entity("dave").is_some());
        assert_eq!(wm.len(), 3);
        assert!(WorkingConfig { entities: 0, ..cfg }.validate().unwrap_err().contains("memory.entities"));
    }
}
