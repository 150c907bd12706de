use super::*;
use crate::scenario::Scenario;
use arbor_behaviors::{Params, Value};

const SCENARIO: &str = "
name: test
goal: test the skills
map:
  size: [12, 6]
  rooms:
    - {name: west, min: [0, 0], max: [6, 6]}
    - {name: east, min: [6, 0], max: [12, 6]}
  walls:
    - [[6, 0], [6, 2.5]]
    - [[6, 3.5], [6, 6]]
  places:
    - {name: west, at: [2, 3]}
    - {name: east, at: [9, 3]}
robot:
  pose: [2, 3, 0]
perception: {position_noise: 0.0, miss_rate: 0.0, attention_noise: 0.0}
people:
  - {name: ann, pose: [4.5, 3, 180], attends_robot: true}
  - {name: ben, pose: [10, 5, 90]}
objects:
  - {name: box, at: [3, 1], label: box}
success:
  - photographed_all_attending
";

fn world() -> (World, WorkingMemory) {
    let s = Scenario::parse(SCENARIO, "test.yaml").unwrap();
    (World::new(&s, 7), WorkingMemory::default())
}

fn params(pairs: &[(&str, Value)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// Starts a skill and steps the world (perceiving into memory) until it finishes.
fn run_skill(
    w: &mut World,
    mem: &mut WorkingMemory,
    id: CallId,
    skill: &str,
    p: &Params,
    max_steps: usize,
) -> (SkillStatus, usize) {
    let call = SkillCall { id, node: "test", skill, params: p };
    let mut s = w.start(&call, mem);
    let mut steps = 0;
    while s.is_running() && steps < max_steps {
        w.step(0.1);
        let obs = w.observe(w.now());
        mem.update(w.now(), &obs);
        s = w.poll(&call, mem);
        steps += 1;
    }
    (s, steps)
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn navigate_to_place_goes_through_the_door() {
    let (mut w, mut mem) = world();
    let (s, steps) = run_skill(
        &mut w,
        &mut mem,
        1,
        "navigate_to",
        &params(&[("target", text("east")), ("speed", Value::Number(0.8))]),
        400,
    );
    assert_eq!(s, SkillStatus::Success("arrived at east".into()));
    assert!(w.robot_pose().position().distance(Point2::new(9.0, 3.0)) < 0.05);
    // 7 m straight through the door at 0.8 m/s: ~9 s plus turning.
    assert!((80..200).contains(&steps), "{steps}");
    assert_eq!(arbor_runtime::Backend::place_at(&w, w.robot_pose().position()).as_deref(), Some("east"));
}

#[test]
fn navigate_to_entity_needs_it_seen_and_stops_short() {
    let (mut w, mut mem) = world();
    let (s, _) = run_skill(&mut w, &mut mem, 1, "navigate_to", &params(&[("target", text("ben"))]), 10);
    assert!(matches!(&s, SkillStatus::Failure(m) if m.contains("has not been seen")), "{s:?}");
    // ann is in view from the start pose.
    let obs = w.observe(w.now());
    mem.update(w.now(), &obs);
    let (s, _) = run_skill(&mut w, &mut mem, 2, "navigate_to", &params(&[("target", text("ann"))]), 100);
    assert!(matches!(s, SkillStatus::Success(_)), "{s:?}");
    let d = w.robot_pose().position().distance(Point2::new(4.5, 3.0));
    assert!((d - PERSON_STANDOFF).abs() < 0.1, "{d}");
}

#[test]
fn look_at_and_scan_turn_the_robot() {
    let (mut w, mut mem) = world();
    let obs = w.observe(w.now());
    mem.update(w.now(), &obs);
    // The box is at (3, 1): behind-right of the robot's initial heading? No: down-right, 63 deg.
    mem.update(
        w.now(),
        &[Observation {
            stamp: w.now(),
            entity: EntityId::new("box"),
            kind: EntityKind::Object,
            label: "box".into(),
            position: Point2::new(3.0, 1.0),
            range: 2.2,
            bearing: 0.0,
            confidence: 1.0,
            attention: None,
            sigma: None,
        }],
    );
    let (s, _) = run_skill(&mut w, &mut mem, 1, "look_at", &params(&[("entity", text("box"))]), 50);
    assert!(matches!(s, SkillStatus::Success(_)), "{s:?}");
    let want = Point2::new(2.0, 3.0).bearing_to(Point2::new(3.0, 1.0));
    assert!(normalize_angle(w.robot_pose().yaw - want).abs() < 0.03);
    let yaw0 = w.robot_pose().yaw;
    let (s, steps) = run_skill(&mut w, &mut mem, 2, "scan", &Params::new(), 100);
    assert_eq!(s, SkillStatus::Success("scanned around".into()));
    assert_eq!(steps, 40, "360 deg at 90 deg/s in 0.1 s steps");
    assert!(normalize_angle(w.robot_pose().yaw - yaw0).abs() < 1e-6);
}

#[test]
fn capture_photo_needs_the_subject_in_frame() {
    let (mut w, mut mem) = world();
    let (s, steps) = run_skill(&mut w, &mut mem, 1, "capture_photo", &params(&[("entity", text("ann"))]), 20);
    assert_eq!(s, SkillStatus::Success("photo of ann".into()));
    assert_eq!(steps, 5, "the shutter takes 0.5 s");
    assert_eq!(w.photos().len(), 1);
    assert!(w.photos()[0].subject_looking, "ann faces the robot");
    let (s, _) = run_skill(&mut w, &mut mem, 2, "capture_photo", &params(&[("entity", text("ben"))]), 20);
    assert!(matches!(&s, SkillStatus::Failure(m) if m.contains("not in view")), "{s:?}");
    let (s, _) = run_skill(&mut w, &mut mem, 3, "capture_photo", &Params::new(), 20);
    assert!(matches!(&s, SkillStatus::Success(m) if m.contains("ann")), "{s:?}");
    assert_eq!(w.photos().len(), 2);
    let c = w.evaluate();
    assert!(c[0].passed, "{c:?}");
}

#[test]
fn say_and_wait_take_their_time() {
    let (mut w, mut mem) = world();
    let (s, steps) = run_skill(&mut w, &mut mem, 1, "wait", &params(&[("seconds", Value::Number(1.5))]), 100);
    assert_eq!((s, steps), (SkillStatus::Success("waited".into()), 15));
    let (s, steps) = run_skill(&mut w, &mut mem, 2, "say", &params(&[("text", text("hello"))]), 100);
    assert!(matches!(s, SkillStatus::Success(_)));
    assert_eq!(steps, 7, "0.4 s + 0.06 s per character");
    assert_eq!(w.said().last().map(|(_, t)| t.as_str()), Some("hello"));
}

#[test]
fn halt_stops_motion_and_a_new_motion_preempts() {
    let (mut w, mem) = world();
    let p = params(&[("target", text("east")), ("speed", Value::Number(0.8))]);
    let call = SkillCall { id: 1, node: "a", skill: "navigate_to", params: &p };
    assert!(w.start(&call, &mem).is_running());
    for _ in 0..5 {
        w.step(0.1);
    }
    w.halt(&call);
    let pose = w.robot_pose();
    for _ in 0..5 {
        w.step(0.1);
    }
    assert_eq!(w.robot_pose(), pose, "halted robot does not move");
    assert!(matches!(w.poll(&call, &mem), SkillStatus::Failure(_)));

    let c2 = SkillCall { id: 2, ..call };
    assert!(w.start(&c2, &mem).is_running());
    let c3 = SkillCall { id: 3, node: "b", skill: "scan", params: &Params::new() };
    assert!(w.start(&c3, &mem).is_running());
    assert!(matches!(w.poll(&c2, &mem), SkillStatus::Failure(m) if m.contains("preempted")));
}

#[test]
fn camera_respects_field_of_view_and_walls() {
    let (mut w, _) = world();
    let seen: Vec<String> = w.observe(SimTime::ZERO).into_iter().map(|o| o.entity.0).collect();
    assert_eq!(seen, ["ann"], "box is outside the 90 deg view, ben behind the wall");
    let o = &w.observe(SimTime::ZERO)[0];
    assert!(o.attention.unwrap() > 0.9, "ann faces the robot: {o:?}");
    assert!((o.range - 2.5).abs() < 1e-9);
}

#[test]
fn noise_is_seeded() {
    let s = Scenario::parse(&SCENARIO.replace("position_noise: 0.0", "position_noise: 0.2"), "t").unwrap();
    let obs = |seed| World::new(&s, seed).observe(SimTime::ZERO);
    assert_eq!(obs(1), obs(1));
    assert_ne!(obs(1), obs(2));
}

#[test]
fn unknown_skill_fails_cleanly() {
    let (mut w, mem) = world();
    let p = Params::new();
    let call = SkillCall { id: 1, node: "x", skill: "fly", params: &p };
    assert!(matches!(w.start(&call, &mem), SkillStatus::Failure(m) if m.contains("no skill 'fly'")));
}
