//! The real-world corpus in `../shared/bt_xml/` (Nav2, BehaviorTree.CPP, BTGenBot):
//! every file validates leniently except three BT.CPP fuzzer seeds that BT.CPP rejects too,
//! and XML -> YAML -> XML gives back the same trees.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_behaviors::{NodeLibrary, Tree, xml, yaml};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The third-party corpus: an extra check. CI (`CI=true`) requires it; a clone of its own
/// (no `../shared` beside it) skips these tests with a notice.
fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ARBOR_BT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bt_xml"));
    if dir.join("SOURCES.tsv").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "corpus not found at {} (set ARBOR_BT_CORPUS); CI requires it",
        dir.display()
    );
    eprintln!("skipped: third-party tree corpus not found at {} (set ARBOR_BT_CORPUS)", dir.display());
    None
}

/// Lays the files out as in their repositories (SOURCES.tsv), so `<include>` resolves.
fn layout(dir: &Path, into: &Path) -> BTreeMap<String, PathBuf> {
    let tsv = std::fs::read_to_string(dir.join("SOURCES.tsv")).unwrap();
    let mut out = BTreeMap::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, repo, path) = (cols[0], cols[1], cols[2]);
        // Files extracted from C++ sources keep their flat name.
        let rel = if path.ends_with(".xml") { format!("{repo}/{path}") } else { format!("{repo}/{file}") };
        let dest = into.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(dir.join(file), &dest).unwrap();
        out.insert(file.to_string(), dest);
    }
    out
}

fn lib() -> NodeLibrary {
    NodeLibrary::builtin()
}

/// Files BT.CPP's own loader rejects as well, with the reason arbor gives.
const REJECTED: [(&str, &str); 3] = [
    ("btcpp__fuzz_corpus2.xml", "'Timeout' has no port 'timeout_ms' (ports: msec)"),
    ("btcpp__fuzz_corpus3.xml", "'SetBlackboard' has no port 'key'"),
    ("btcpp__fuzz_corpus4.xml", "'ForceSuccess' takes exactly one child, got 0"),
];

#[test]
fn every_file_validates_leniently_except_the_broken_fuzz_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(dir) = corpus_dir() else { return };
    let files = layout(&dir, tmp.path());
    assert!(files.len() >= 20, "{} files", files.len());
    let mut ok = 0;
    for (name, path) in &files {
        // A file of node models only (Nav2's TreeNodesModel) is a manifest, not a tree.
        if let Ok(t) = xml::load_file(path)
            && t.trees.is_empty()
        {
            assert!(t.models.len() > 10, "{name}: {} models", t.models.len());
            ok += 1;
            continue;
        }
        let result = xml::load_file(path).and_then(|t| t.check(name, &lib(), None, true));
        match (result, REJECTED.iter().find(|(f, _)| f == name)) {
            (Ok(_), None) => ok += 1,
            (Err(e), Some((_, why))) => assert!(e.to_string().contains(why), "{name}: {e}"),
            (Ok(_), Some(_)) => panic!("{name} should be rejected"),
            (Err(e), None) => panic!("{name}: {e}"),
        }
    }
    assert_eq!(ok, files.len() - REJECTED.len());
}

#[test]
fn strict_mode_names_the_undeclared_node_and_line() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(dir) = corpus_dir() else { return };
    let files = layout(&dir, tmp.path());
    let t = xml::load_file(&files["nav2__navigate_to_pose_w_replanning_and_recovery.xml"]).unwrap();
    let e = t.check("nav2.xml", &lib(), None, false).unwrap_err().to_string();
    assert!(
        e.starts_with("nav2.xml: line 9: tree 'NavigateToPoseWReplanningAndRecovery', at node 'RecoveryNode'"),
        "{e}"
    );
    assert!(e.contains("unknown node type 'RecoveryNode'"), "{e}");
}

fn round_trip(t: &Tree) -> Tree {
    let y = yaml::to_yaml(t);
    let from_yaml = yaml::parse(&y, "round-trip.yaml").unwrap_or_else(|e| panic!("{e}\n{y}"));
    let x = xml::to_xml(&from_yaml);
    xml::parse(&x, "round-trip.xml").unwrap_or_else(|e| panic!("{e}\n{x}"))
}

#[test]
fn xml_to_yaml_to_xml_gives_back_the_same_trees() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(dir) = corpus_dir() else { return };
    let files = layout(&dir, tmp.path());
    let mut n = 0;
    for (name, path) in &files {
        let t = xml::load_file(path).unwrap();
        if REJECTED.iter().any(|(f, _)| f == name) {
            continue;
        }
        let back = round_trip(&t);
        assert!(back.same_as(&t), "{name}:\n{}\n---\n{}", xml::to_xml(&t), xml::to_xml(&back));
        // And the written XML is stable: writing it again gives the same bytes.
        assert_eq!(xml::to_xml(&back), xml::to_xml(&t), "{name}");
        n += 1;
    }
    assert_eq!(n, files.len() - REJECTED.len());
}

#[test]
fn includes_and_subtree_shorthand_resolve() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(dir) = corpus_dir() else { return };
    let files = layout(&dir, tmp.path());
    let t = xml::load_file(&files["btcpp__subtree_test.xml"]).unwrap();
    let ids: Vec<_> = t.trees.iter().filter_map(|d| d.id.as_deref()).collect();
    assert_eq!(ids, ["BehaviorTree", "CheckStatus", "SayStuff"]);
    let checked = t.check("subtree_test.xml", &lib(), None, true).unwrap();
    // CheckStatus and SayStuff are trees of the document, used as node types; the rest
    // (OpenGripper, CheckBattery, ...) are undeclared and loaded as generic nodes.
    let w = &checked.warnings;
    assert!(w.iter().all(|w| !w.contains("node 'CheckStatus'") && !w.contains("node 'SayStuff'")), "{w:?}");
    assert!(w.iter().any(|w| w.contains("undeclared node 'OpenGripper'")));
    // Problems inside an included file name that file.
    assert!(w.iter().any(|w| w.contains("Check.xml: line 5: tree 'CheckStatus'")), "{w:?}");
}

/// Nav2's trees validate strictly once Nav2's own TreeNodesModel declares its nodes.
#[test]
fn nav2_trees_validate_strictly_against_nav2s_own_models() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(dir) = corpus_dir() else { return };
    let files = layout(&dir, tmp.path());
    let models = xml::load_file(&files["nav2__tree_nodes_model.xml"]).unwrap();
    let mut nav2 = lib();
    models.declare_models(&mut nav2);
    let mut n = 0;
    for (name, path) in
        files.iter().filter(|(f, _)| f.starts_with("nav2__") && f.as_str() != "nav2__tree_nodes_model.xml")
    {
        let t = xml::load_file(path).unwrap();
        t.check(name, &nav2, None, false).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert!(n >= 3, "{n} Nav2 trees");
}
