//! Malformed trees give one clear error each (file, tree, node, line), never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use arbor_behaviors::{NodeLibrary, xml, yaml};

fn xml_err(text: &str) -> String {
    match xml::parse(text, "t.xml") {
        Err(e) => e.to_string(),
        Ok(t) => t
            .check("t.xml", &NodeLibrary::builtin(), None, false)
            .map(|_| "OK".to_string())
            .unwrap_or_else(|e| e.to_string()),
    }
}

fn yaml_err(text: &str) -> String {
    match yaml::parse(text, "t.yaml") {
        Err(e) => e.to_string(),
        Ok(t) => t
            .check("t.yaml", &NodeLibrary::builtin(), None, false)
            .map(|_| "OK".to_string())
            .unwrap_or_else(|e| e.to_string()),
    }
}

const GOOD: &str = r#"<root BTCPP_format="4">
  <BehaviorTree ID="Main">
    <Sequence>
      <Script code="x := 1"/>
      <SubTree ID="Sub"/>
    </Sequence>
  </BehaviorTree>
  <BehaviorTree ID="Sub">
    <AlwaysSuccess/>
  </BehaviorTree>
</root>"#;

#[test]
fn the_good_tree_is_good() {
    assert_eq!(xml_err(GOOD), "OK");
}

#[test]
fn truncated_and_wrongly_nested_xml() {
    let e = xml_err(&GOOD[..GOOD.len() / 2]);
    assert!(e.starts_with("t.xml: line ") && e.contains("column"), "{e}");
    let e = xml_err(
        "<root BTCPP_format=\"4\">\n<BehaviorTree>\n<Sequence>\n<Fallback>\n</Sequence>\n</Fallback>\n</BehaviorTree>\n</root>",
    );
    assert!(e.starts_with("t.xml: line 5"), "{e}");
    let e = xml_err("");
    assert!(e.starts_with("t.xml:"), "{e}");
}

#[test]
fn unknown_nodes_and_ports() {
    let e = xml_err(&GOOD.replace("<Script code=\"x := 1\"/>", "<Sequense/>"));
    assert_eq!(
        e,
        "t.xml: line 4: tree 'Main', at node 'sequence/Sequense[0]': unknown node type 'Sequense' (did you mean 'Sequence'?) (use --lenient to load undeclared nodes as generic ones)"
    );
    let e = xml_err(&GOOD.replace("<AlwaysSuccess/>", "<Timeout msecs=\"5\"><AlwaysSuccess/></Timeout>"));
    assert!(
        e.contains("line 9: tree 'Sub', at node 'timeout': 'Timeout' has no port 'msecs' (did you mean 'msec'?)"),
        "{e}"
    );
}

#[test]
fn bad_port_values() {
    for (bad, want) in [
        ("<Timeout msec=\"soon\"><AlwaysSuccess/></Timeout>", "port 'msec' must be whole number >= 0, got \"soon\""),
        ("<Repeat num_cycles=\"1.5\"><AlwaysSuccess/></Repeat>", "'num_cycles' must be whole number"),
        ("<Timeout><AlwaysSuccess/></Timeout>", "missing required port 'msec'"),
        ("<Script code=\"x := (1 + \"/>", "script"),
        ("<AlwaysSuccess _skipIf=\"a ==\"/>", "attribute '_skipIf'"),
        ("<RunOnce then_skip=\"maybe\"><AlwaysSuccess/></RunOnce>", "'then_skip' must be bool"),
        ("<Sleep msec=\"{bad key}\"/>", "OK"),
        ("<Sleep msec=\"{unclosed\"/>", "not a valid blackboard reference"),
        (
            "<Precondition if=\"true\" else=\"MAYBE\"><AlwaysSuccess/></Precondition>",
            "one of FAILURE|SUCCESS|SKIPPED|RUNNING",
        ),
        ("<Inverter><AlwaysSuccess/><AlwaysSuccess/></Inverter>", "'Inverter' takes exactly one child, got 2"),
        ("<Switch2 variable=\"{v}\"><AlwaysSuccess/></Switch2>", "'Switch2' takes exactly 3 children, got 1"),
        ("<Sequence/>", "'Sequence' takes at least 1 child, got 0"),
    ] {
        let e = xml_err(
            &GOOD
                .replace("<AlwaysSuccess/>\n  </BehaviorTree>\n</root>", &format!("{bad}\n  </BehaviorTree>\n</root>")),
        );
        assert!(e.contains(want), "{bad}: {e}");
        if want != "OK" {
            assert!(e.starts_with("t.xml: line 9: tree 'Sub'"), "{bad}: {e}");
        }
    }
}

#[test]
fn subtree_problems() {
    let e = xml_err(&GOOD.replace("<SubTree ID=\"Sub\"/>", "<SubTree ID=\"Nope\"/>"));
    assert!(e.contains("line 5") && e.contains("subtree 'Nope' is not defined in this file (trees: Main, Sub)"), "{e}");
    let e = xml_err(&GOOD.replace("<AlwaysSuccess/>", "<SubTree ID=\"Main\"/>"));
    assert!(e.contains("recursive subtree: Main -> Sub -> Main"), "{e}");
    let e = xml_err(&GOOD.replace("<AlwaysSuccess/>", "<Sub/>"));
    assert!(e.contains("recursive subtree: Main -> Sub -> Sub") || e.contains("recursive subtree: Sub -> Sub"), "{e}");
    let e = xml_err(&GOOD.replace("ID=\"Sub\">", "ID=\"Main\">"));
    assert!(e.contains("tree ID 'Main' is defined twice"), "{e}");
    let e =
        xml_err(&GOOD.replace("<root BTCPP_format=\"4\">", "<root BTCPP_format=\"4\" main_tree_to_execute=\"Other\">"));
    assert!(e.contains("main tree 'Other' is not defined"), "{e}");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!(
        "<root BTCPP_format=\"4\"><BehaviorTree>{}<AlwaysSuccess/>{}</BehaviorTree></root>",
        "<Inverter>".repeat(500),
        "</Inverter>".repeat(500)
    );
    let e = xml_err(&deep);
    assert!(e.contains("nested more than"), "{e}");
}

#[test]
fn yaml_problems() {
    let e = yaml_err("root:\n  sequence:\n    - always_success:\n   - bad indent\n");
    assert!(e.starts_with("t.yaml: line 4"), "{e}");
    let e = yaml_err("root:\n  sequence:\n    - teleport: {to: mars}\n");
    assert!(e.contains("at node 'sequence/teleport[0]': unknown node type 'teleport'"), "{e}");
    let e = yaml_err("root:\n  retry:\n    num_attempts: many\n    child: {always_success: }\n");
    assert!(e.contains("'num_attempts' must be whole number"), "{e}");
    let e = yaml_err("trees:\n  - id: A\n    root: {subtree: {ID: B}}\n  - id: B\n    root: {subtree: {ID: A}}\n");
    assert!(e.contains("recursive subtree: A -> B -> A"), "{e}");
    let e = yaml_err("root: [1, 2]\n");
    assert!(e.contains("a node is a map"), "{e}");
}
