//! Working memory: the goal, what is in view now, what was seen recently, recent events.
//! Bounded: entities not seen for `forget_after` are dropped, events are a ring buffer.

use crate::episodic::Event;
use arbor_perception::{EntityId, EntityKind, Observation, Point2, SimTime};
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
}

impl EntityState {
    /// Attention above the threshold, hysteresis-free (the attention model adds hysteresis).
    pub fn is_attending(&self, threshold: f32) -> bool {
        self.in_view && self.attention.is_some_and(|a| a >= threshold)
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
}

impl Default for WorkingMemory {
    fn default() -> Self {
        Self::new(32, SimTime::from_secs_f64(600.0))
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
        Self {
            goal: None,
            entities: BTreeMap::new(),
            recent: VecDeque::with_capacity(recent_capacity),
            recent_capacity: recent_capacity.max(1),
            forget_after,
            attention_alpha: 0.5,
        }
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
        changes
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
    use crate::EventKind;

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
}
