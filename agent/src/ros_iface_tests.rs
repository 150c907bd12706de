#![allow(clippy::unwrap_used, reason = "test code")]
use super::*;

fn nav2() -> Interfaces {
    Interfaces::with_texts(&[
        (
            "nav2_msgs/action/NavigateToPose",
            include_str!("../../tests/ros2/interfaces/nav2_msgs/action/NavigateToPose.action"),
        ),
        ("nav2_msgs/action/Spin", include_str!("../../tests/ros2/interfaces/nav2_msgs/action/Spin.action")),
        ("geometry_msgs/msg/PoseStamped", "std_msgs/Header header\nPose pose\n"),
        ("geometry_msgs/msg/Pose", "Point position\nQuaternion orientation\n"),
        ("geometry_msgs/msg/Point", "float64 x\nfloat64 y\nfloat64 z\n"),
        ("geometry_msgs/msg/Quaternion", "float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n"),
        ("std_msgs/msg/Header", "builtin_interfaces/Time stamp\nstring frame_id\n"),
        ("builtin_interfaces/msg/Time", "int32 sec\nuint32 nanosec\n"),
        ("builtin_interfaces/msg/Duration", "int32 sec\nuint32 nanosec\n"),
        ("std_msgs/msg/String", "string data\n"),
    ])
}

const MANIFEST: &str = "\
skills:
  - name: go
    description: drive through Nav2
    inputs:
      - {name: target, type: place}
      - {name: tree, type: text, default: ''}
    outputs:
      - {name: code, type: integer}
    ros2:
      action:
        type: nav2_msgs/action/NavigateToPose
        server: navigate_to_pose
        goal: {pose: \"{target}\", behavior_tree: \"{tree}\"}
        result: {code: error_code}
        success: \"error_code == 0\"
  - name: spin
    description: turn on the spot
    inputs:
      - {name: yaw, type: number, min: -7, max: 7}
      - {name: seconds, type: integer, min: 1, max: 60, default: 10}
    ros2:
      action:
        type: nav2_msgs/action/Spin
        server: spin
        goal: {target_yaw: \"{yaw}\", time_allowance: {sec: \"{seconds}\"}}
";

#[test]
fn a_manifest_is_checked_against_the_definitions() {
    let m = SkillManifest::parse(MANIFEST, "nav.yaml").unwrap();
    nav2().check_manifest(&m).unwrap();
    let bad =
        |text: &str| nav2().check_manifest(&SkillManifest::parse(text, "nav.yaml").unwrap()).unwrap_err().to_string();
    let e = bad(&MANIFEST.replace("behavior_tree: \"{tree}\"", "behaviour_tree: \"{tree}\""));
    assert!(
        e.contains("nav.yaml:13: skill 'go': field 'ros2.action.goal'") && e.contains("no field 'behaviour_tree'"),
        "{e}"
    );
    let e = bad(&MANIFEST.replace("time_allowance: {sec: \"{seconds}\"}", "time_allowance: {sec: \"{yaw}\"}"));
    assert!(e.contains("skill 'spin'") && e.contains("time_allowance.sec") && e.contains("cannot fill a int32"), "{e}");
    let e = bad(&MANIFEST.replace("target_yaw: \"{yaw}\"", "target_yaw: fast"));
    assert!(e.contains("target_yaw: a float field, got \"fast\""), "{e}");
    let e = bad(&MANIFEST.replace("result: {code: error_code}", "result: {code: error}"));
    assert!(e.contains("field 'ros2.action.result.code'") && e.contains("no field 'error'"), "{e}");
    let e = bad(&MANIFEST.replace("nav2_msgs/action/Spin", "nav2_msgs/action/Spinn"));
    assert!(e.contains("field 'ros2.action.type'") && e.contains("no definition of nav2_msgs/action/Spinn"), "{e}");
    // A message type where an action is needed: an error naming the field, never a panic.
    let e = bad(&MANIFEST.replace("type: nav2_msgs/action/NavigateToPose", "type: std_msgs/msg/String"));
    assert!(e.contains("field 'ros2.action.type'") && e.contains("is not of kind action"), "{e}");
    let e = bad(&MANIFEST.replace("success: \"error_code == 0\"", "success: \"code == 0\""));
    assert!(e.contains("ros2.action.success") && e.contains("no field 'code'"), "{e}");
}

#[test]
fn goals_are_built_whole_and_typed() {
    let mut i = nav2();
    let parts = i.parts("nav2_msgs/action/NavigateToPose").unwrap();
    assert_eq!(parts["result"].iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["error_code", "error_msg"]);
    let tpl = serde_json::json!({"pose": "{target}", "behavior_tree": "{tree}"});
    let mut p = Params::new();
    p.insert("target".into(), Value::Text("kitchen".into()));
    p.insert("tree".into(), Value::Text(String::new()));
    let places: BTreeMap<String, [f64; 2]> = [("kitchen".to_string(), [4.0, 1.5])].into_iter().collect();
    let goal = i.build(&parts["goal"], &tpl, &p, &places, "map").unwrap();
    assert_eq!(goal["pose"]["header"]["frame_id"], "map");
    assert_eq!(goal["pose"]["header"]["stamp"], serde_json::json!({"sec": 0, "nanosec": 0}));
    assert_eq!(goal["pose"]["pose"]["position"]["x"], 4.0);
    assert_eq!(goal["pose"]["pose"]["orientation"]["w"], 1.0);
    // A pose port written x;y;yaw.
    p.insert("target".into(), Value::Text("1;2;3.14159".into()));
    let goal = i.build(&parts["goal"], &tpl, &p, &places, "map").unwrap();
    assert!((goal["pose"]["pose"]["orientation"]["z"].as_f64().unwrap() - 1.0).abs() < 1e-4);
    p.insert("target".into(), Value::Text("garage".into()));
    assert!(i.build(&parts["goal"], &tpl, &p, &places, "map").is_err());

    let spin = i.parts("nav2_msgs/action/Spin").unwrap();
    let tpl = serde_json::json!({"target_yaw": "{yaw}", "time_allowance": {"sec": "{seconds}"}});
    let mut p = Params::new();
    p.insert("yaw".into(), Value::Number(1.5));
    p.insert("seconds".into(), Value::Number(10.0));
    let goal = i.build(&spin["goal"], &tpl, &p, &places, "map").unwrap();
    assert_eq!(
        goal,
        serde_json::json!({"target_yaw": 1.5, "time_allowance": {"sec": 10, "nanosec": 0}, "disable_collision_checks": false})
    );
    assert!(goal["time_allowance"]["sec"].is_i64() || goal["time_allowance"]["sec"].is_u64(), "an integer, not 10.0");
    p.insert("seconds".into(), Value::Number(2.5));
    assert!(i.build(&spin["goal"], &tpl, &p, &places, "map").is_err(), "a fraction into an int32 is refused, not sent");
    assert_eq!(to_value(&serde_json::json!([1, 2])), Value::Text("[1,2]".into()));
}

#[test]
fn an_empty_section_is_a_section() {
    let mut i = Interfaces::with_texts(&[("std_srvs/srv/Trigger", "---\nbool success # done?\nstring message\n")]);
    let parts = i.parts("std_srvs/srv/Trigger").unwrap();
    assert!(parts["request"].is_empty());
    assert_eq!(parts["response"].len(), 2);
    assert_eq!(
        i.build(&parts["request"], &serde_json::Value::Null, &Params::new(), &BTreeMap::new(), "map").unwrap(),
        serde_json::json!({})
    );
}
