#![allow(clippy::unwrap_used, reason = "test code")]
use super::*;

const GRIPPER: &str = "\
skills:
  - name: pick
    description: pick up an object within reach
    inputs:
      - {name: object, type: entity, description: what}
      - {name: force, type: number, min: 0, max: 40, default: 10}
    outputs:
      - {name: weight, type: number}
    sim:
      duration_s: 2.5
      success_probability: 0.9
      requires: [\"near({object})\", \"not holding(_)\"]
      effects: [\"holding({object})\", \"not on({object}, _)\"]
      outputs: {weight: 0.25}
    ros2:
      action:
        type: my_msgs/action/Pick
        server: /gripper/pick
        goal: {target: {name: \"{object}\"}, force: \"{force}\"}
        result: {weight: weight_kg}
        success: \"error_code == 0\"
  - name: holding
    kind: condition
    description: the gripper holds the object
    inputs:
      - {name: object, type: entity}
    sim:
      holds: [\"holding({object})\"]
    ros2:
      topic: {type: std_msgs/msg/String, topic: /gripper/held, rule: \"data == '{object}'\"}
  - name: dock
    description: drive onto the charging dock
    sim: {duration_s: 8, effects: [\"docked(robot)\"]}
    ros2:
      service: {type: std_srvs/srv/Trigger, name: /dock, success: \"success == true\"}
";

#[test]
fn a_manifest_declares_ports_outputs_and_bindings() {
    let m = SkillManifest::parse(GRIPPER, "gripper.yaml").unwrap();
    assert_eq!(m.skills.len(), 3);
    let pick = m.get("pick").unwrap();
    assert_eq!(pick.line, 2);
    assert_eq!(pick.spec.params.len(), 2);
    assert!(pick.spec.params[0].required && !pick.spec.params[1].required);
    assert_eq!(pick.spec.params[1].default, Some(Value::Number(10.0)));
    assert_eq!(pick.spec.outputs[0].name, "weight");
    let sim = pick.sim.as_ref().unwrap();
    assert_eq!((sim.duration_s, sim.success_probability), (2.5, 0.9));
    assert_eq!(sim.requires[1].to_string(), "not holding(_)");
    assert_eq!(sim.effects[0].to_string(), "holding({object})");
    match pick.ros2.as_ref().unwrap() {
        RosBinding::Action { interface, server, goal, result, success } => {
            assert_eq!((interface.as_str(), server.as_str()), ("my_msgs/action/Pick", "/gripper/pick"));
            assert_eq!(goal["target"]["name"], "{object}");
            assert_eq!(result["weight"], "weight_kg");
            assert_eq!(success.as_ref().unwrap().to_string(), "error_code == 0");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.get("holding").unwrap().spec.kind, SkillKind::Condition);
    let reg = m.registry();
    assert_eq!(reg.names(), vec!["dock", "holding", "pick"]);
    m.check_backend(Backend::Sim).unwrap();
    m.check_backend(Backend::Ros2).unwrap();
}

fn err(text: &str) -> ManifestError {
    SkillManifest::parse(text, "m.yaml").unwrap_err()
}

#[test]
fn errors_name_file_line_skill_and_field() {
    let e = err(&GRIPPER.replace("type: number, min: 0", "type: numbr, min: 0"));
    assert_eq!((e.line, e.skill.as_deref()), (6, Some("pick")), "{e}");
    assert!(
        e.to_string().starts_with("m.yaml:6: skill 'pick': field 'inputs.force.type': unknown type 'numbr'"),
        "{e}"
    );

    let e = err(&GRIPPER.replace("\"holding({object})\", \"not on", "\"holding({thing})\", \"not on"));
    assert_eq!(e.line, 13, "{e}");
    assert!(e.to_string().contains("field 'sim.effects'") && e.to_string().contains("{thing}"), "{e}");

    let e = err(&GRIPPER.replace("result: {weight: weight_kg}", "result: {mass: weight_kg}"));
    assert_eq!(e.line, 20, "{e}");
    assert!(e.to_string().contains("'mass' is not an output port"), "{e}");

    let e = err(&GRIPPER.replace("kind: condition", "kind: conditon"));
    assert!(e.to_string().contains("m.yaml") && e.line == 23, "{e}");

    // Parsing alone accepts a skill bound to one backend (the backend's check refuses it).
    assert!(
        SkillManifest::parse(&GRIPPER.replace("    sim: {duration_s: 8, effects: [\"docked(robot)\"]}\n", ""), "m")
            .is_ok()
    );
}

#[test]
fn a_skill_a_backend_cannot_run_is_refused_at_load() {
    let only_ros = GRIPPER.replace("    sim:\n      holds: [\"holding({object})\"]\n", "");
    let m = SkillManifest::parse(&only_ros, "m.yaml").unwrap();
    m.check_backend(Backend::Ros2).unwrap();
    let e = m.check_backend(Backend::Sim).unwrap_err();
    assert!(
        e.to_string().contains("skill 'holding'") && e.to_string().contains("the simulator cannot answer it"),
        "{e}"
    );
    assert_eq!(e.line, 22, "{e}");

    let e = err(&GRIPPER.replace("rule: \"data == '{object}'\"", "rule: \"data\""));
    assert!(e.to_string().contains("field 'ros2.topic.rule'"), "{e}");
    let e = err(&GRIPPER.replace("name: dock", "name: Sequence"));
    assert!(e.to_string().contains("built-in node type"), "{e}");
    let e = err(&GRIPPER.replace("name: dock", "name: pick"));
    assert!(e.to_string().contains("declared twice (first on line 2)"), "{e}");
    let e = err(&GRIPPER.replace("success_probability: 0.9", "success_probability: 1.5"));
    assert!(e.to_string().contains("'sim.success_probability'") && e.line == 11, "{e}");
    let e = err("skills: []\n");
    assert!(e.to_string().contains("declares no skills"), "{e}");
}

#[test]
fn literals_and_rules_parse_and_evaluate() {
    let l = Literal::parse("not at( {object} , kitchen)").unwrap();
    assert!(l.negated);
    let mut p = Params::new();
    p.insert("object".into(), Value::Text("cup".into()));
    assert_eq!(l.ground(&p), vec![Some("cup".into()), Some("kitchen".into())]);
    assert!(Literal::parse("holding").is_err());
    assert!(Literal::parse("holding(a b)").is_err());
    let r = Rule::parse("result.code >= 2").unwrap();
    let msg = serde_json::json!({"result": {"code": 3}, "data": "cup", "ok": true, "poses": [{"x": 1.5}]});
    assert!(r.holds(&msg).unwrap());
    assert!(Rule::parse("data == 'cup'").unwrap().holds(&msg).unwrap());
    assert!(Rule::parse("data != \"cup\"").unwrap().holds(&msg).is_ok_and(|b| !b));
    assert!(Rule::parse("ok == true").unwrap().holds(&msg).unwrap());
    assert!(Rule::parse("poses[0].x < 2").unwrap().holds(&msg).unwrap());
    assert!(Rule::parse("missing == 1").unwrap().holds(&msg).is_err());
    assert_eq!(placeholders("go to {place} at {speed} ({x"), vec!["place", "speed"]);
}
