//! The robot's skill set as the runtime knows it, and what finished skills leave in memory.
//!
//! Both backends offer the same seven skills (the simulator's world and the ROS 2 node's
//! `RosRobot`); their parameters are checked here, once. What a skill leaves in memory (a photo,
//! an arrival, a sentence said) is made here from the call and its result, so that the same
//! situation gives the same event on every backend.

use arbor_behaviors::{Params, SkillManifest, SkillRegistry, SkillStatus, Value};
use arbor_core::{EntityId, Point2, SimTime};
use arbor_memory::{Event, EventKind};
use std::collections::BTreeMap;

/// The photographer robot's skill manifest (`sim/skills/photographer.yaml`), the default of
/// `arbor sim` and `arbor run` when no `--skills` file is given.
pub const PHOTOGRAPHER_MANIFEST: &str = include_str!("../../../sim/skills/photographer.yaml");

/// The photographer's manifest, parsed (it is checked by this crate's tests).
pub fn photographer() -> SkillManifest {
    SkillManifest::parse(PHOTOGRAPHER_MANIFEST, "sim/skills/photographer.yaml").unwrap_or_default()
}

/// Registers everything a tree may use on a robot with these skills: the manifest's skills and
/// the memory-backed conditions (answered from working memory on every backend).
pub fn register_manifest(reg: &mut SkillRegistry, manifest: &SkillManifest) {
    for s in &manifest.skills {
        reg.register(s.spec.clone());
    }
    arbor_behaviors::conditions::register(reg);
}

/// The registry of a manifest's robot: its skills and the memory-backed conditions.
pub fn registry_of(manifest: &SkillManifest) -> SkillRegistry {
    let mut reg = SkillRegistry::new();
    register_manifest(&mut reg, manifest);
    reg
}

/// The registry of a robot with `manifest`'s skills, or the photographer's without one.
pub fn registry_for(manifest: Option<&SkillManifest>) -> SkillRegistry {
    match manifest {
        Some(m) => registry_of(m),
        None => registry(),
    }
}

/// A manifest as a run records it (source and text).
pub fn recorded(m: &SkillManifest) -> arbor_records::recording::RecordedManifest {
    arbor_records::recording::RecordedManifest { source: m.source.clone(), yaml: m.text().to_string() }
}

/// Registers the photographer's skills and the memory-backed conditions.
pub fn register(reg: &mut SkillRegistry) {
    register_manifest(reg, &photographer());
}

/// The registry of the photographer robot (the default manifest).
pub fn registry() -> SkillRegistry {
    registry_of(&photographer())
}

fn text<'a>(params: &'a Params, key: &str) -> Option<&'a str> {
    params.get(key).and_then(Value::as_str)
}

/// The memory event a successful skill leaves, if any: `PhotoTaken` (with its subject; without
/// one, of what memory has in view), `Arrived`, `Said`. `place` is where the robot is (the
/// backend's place of its pose). Made from the call alone, never from the backend's wording, so
/// that the same situation leaves the same event on every backend.
pub fn skill_event(
    t: SimTime,
    skill: &str,
    params: &Params,
    status: &SkillStatus,
    place: Option<&str>,
    in_view: &[String],
) -> Option<Event> {
    if !matches!(status, SkillStatus::Success(_)) {
        return None;
    }
    let ev = match skill {
        "capture_photo" => match text(params, "entity").filter(|e| !e.is_empty()) {
            Some(who) => {
                Event::new(t, EventKind::PhotoTaken, format!("photo of {who}")).with_entity(EntityId::new(who))
            }
            None if in_view.is_empty() => Event::new(t, EventKind::PhotoTaken, "photo of nothing"),
            None => Event::new(t, EventKind::PhotoTaken, format!("photo of {}", in_view.join(", "))),
        },
        "navigate_to" => {
            Event::new(t, EventKind::Arrived, format!("arrived at {}", text(params, "target").unwrap_or("")))
        }
        "say" => Event::new(t, EventKind::Said, text(params, "text").unwrap_or("").to_string()),
        _ => return None,
    };
    Some(match place {
        Some(p) if skill != "say" => ev.with_place(p),
        _ => ev,
    })
}

/// The configured place nearest to `p` (a robot's places are points on its map).
pub fn nearest_place(places: &BTreeMap<String, [f64; 2]>, p: Point2) -> Option<&str> {
    places
        .iter()
        .map(|(name, q)| (name, p.distance(Point2::new(q[0], q[1]))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(name, _)| name.as_str())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn photos_name_their_subject_and_place() {
        let mut params = Params::new();
        params.insert("entity".into(), Value::Text("alice".into()));
        let ok = SkillStatus::Success("ok".into());
        let ev = skill_event(SimTime::ZERO, "capture_photo", &params, &ok, Some("office"), &[]).unwrap();
        assert_eq!(ev.kind, EventKind::PhotoTaken);
        assert_eq!(ev.text, "photo of alice");
        assert_eq!(ev.entity.as_ref().map(|e| e.as_str()), Some("alice"));
        assert_eq!(ev.place.as_deref(), Some("office"));
        let failed = SkillStatus::Failure("x".into());
        assert!(skill_event(SimTime::ZERO, "capture_photo", &params, &failed, None, &[]).is_none());
        assert!(skill_event(SimTime::ZERO, "wait", &params, &ok, None, &[]).is_none());
        let view = ["bob".to_string(), "carol".to_string()];
        let ev = skill_event(SimTime::ZERO, "capture_photo", &Params::new(), &ok, None, &view).unwrap();
        assert_eq!((ev.text.as_str(), ev.entity.is_none()), ("photo of bob, carol", true));
        let said = skill_event(SimTime::ZERO, "say", &params, &ok, Some("office"), &[]);
        assert!(said.is_some_and(|e| e.place.is_none()), "speech has no place");
    }

    /// The skills as they were declared in Rust before the manifest: the file must declare them
    /// the same (the checker, the planner's prompt and grammar, and the records depend on it).
    #[test]
    fn the_photographer_manifest_declares_the_seven_skills_as_before() {
        use arbor_behaviors::skill::{ParamSpec, ParamType, SkillSpec};
        let m = SkillManifest::parse(PHOTOGRAPHER_MANIFEST, "photographer.yaml").unwrap();
        let speed = ParamSpec::with_default(
            "speed",
            ParamType::Number { min: 0.05, max: 2.0 },
            Value::Number(0.8),
            "m/s, capped by the robot",
        );
        let want = [
            SkillSpec::action(
                "navigate_to",
                "drive to a named place, or up to a person or object seen before",
                vec![ParamSpec::required("target", ParamType::Target, "place or entity name"), speed],
            ),
            SkillSpec::action(
                "look_at",
                "turn to face a person or object seen before",
                vec![ParamSpec::required("entity", ParamType::Entity, "who or what")],
            ),
            SkillSpec::action("scan", "turn once on the spot to look around", vec![]),
            SkillSpec::action(
                "capture_photo",
                "take a photo; with an entity, it must be centred in view and close enough",
                vec![ParamSpec::optional("entity", ParamType::Entity, "the subject")],
            ),
            SkillSpec::action(
                "say",
                "speak a sentence",
                vec![ParamSpec::required("text", ParamType::Text { max_len: 200 }, "what to say")],
            ),
            SkillSpec::action(
                "wait",
                "do nothing for a while",
                vec![ParamSpec::required("seconds", ParamType::Number { min: 0.0, max: 600.0 }, "how long")],
            ),
            SkillSpec::condition(
                "photographed",
                "succeeds if a photo of the entity has been taken",
                vec![ParamSpec::required("entity", ParamType::Entity, "who or what")],
            ),
        ];
        assert_eq!(m.skills.len(), want.len());
        for w in &want {
            let got = m.get(&w.name).unwrap();
            assert_eq!(&got.spec, w);
            assert_eq!(got.builtin.as_deref(), Some(w.name.as_str()));
        }
        m.check_backend(arbor_behaviors::manifest::Backend::Sim).unwrap();
        m.check_backend(arbor_behaviors::manifest::Backend::Ros2).unwrap();
        assert_eq!(registry().len(), registry_of(&m).len());
    }

    #[test]
    fn nearest_place_is_the_closest() {
        let places: BTreeMap<String, [f64; 2]> =
            [("a".to_string(), [0.0, 0.0]), ("b".to_string(), [5.0, 0.0])].into_iter().collect();
        assert_eq!(nearest_place(&places, Point2::new(4.0, 1.0)), Some("b"));
        assert_eq!(nearest_place(&BTreeMap::new(), Point2::new(4.0, 1.0)), None);
    }
}
