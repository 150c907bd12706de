//! A bounded mutation fuzzer for the XML and YAML loaders, the checker and the engine.
//!
//! Seeds: the real-world corpus and arbor's own trees. Each case mutates a seed (byte flips,
//! cuts, splices, inserted XML/YAML/script tokens), then loads, checks (strict and lenient),
//! builds and ticks it. Any panic fails the test and prints the input. Deterministic.
//!
//! CI runs `ARBOR_FUZZ_ITERS` cases (default 3000). A longer run:
//! `ARBOR_FUZZ_ITERS=1000000 ARBOR_FUZZ_SEED=7 cargo test --release -p arbor-behaviors --test fuzz_loaders -- --nocapture`
//! or time-bounded: `ARBOR_FUZZ_SECONDS=600 cargo test --release -p arbor-behaviors --test fuzz_loaders -- --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "test code")]

use arbor_behaviors::record::NullSink;
use arbor_behaviors::robot::AsyncSkills;
use arbor_behaviors::{Executor, NodeLibrary, Tree, xml, yaml};
use arbor_core::{Rng, SimTime};
use arbor_memory::WorkingMemory;
use std::path::Path;
use std::time::{Duration, Instant};

const TOKENS: &[&str] = &[
    "<",
    ">",
    "/>",
    "</",
    "\"",
    "'",
    "&",
    "&amp;",
    "{",
    "}",
    "{x}",
    "=",
    ":",
    ";",
    "-",
    "\n",
    "  ",
    "- ",
    ": ",
    "[",
    "]",
    "<Sequence>",
    "</Sequence>",
    "<SubTree ID=\"Main\"/>",
    "<SubTree ID=\"X\" _autoremap=\"true\"/>",
    "<Repeat num_cycles=\"-1\">",
    "<Timeout msec=\"0\">",
    "<Parallel success_count=\"-3\">",
    "<Switch2 variable=\"{v}\" case_1=\"1\">",
    "_while=\"",
    "_skipIf=\"x :=",
    "code=\"a := a + 1; b = 2\"",
    "BTCPP_format=\"3\"",
    "sequence:",
    "child:",
    "children:",
    "retry:",
    "num_attempts: -1",
    "subtree: {ID: A}",
    "trees:",
    "root:",
    "((((((",
    "))))",
    "!",
    "?",
    "..",
    "1e999",
    "0x",
    "\u{0}",
    "\u{fffd}",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<include path=\"x.xml\"/>",
];

fn seeds() -> Vec<(String, bool)> {
    let mut out = Vec::new();
    // The project's own XML fixtures, and the third-party corpus where it is there.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    for corpus in [here.join("../tests/fixtures/bt_xml"), here.join("../../shared/bt_xml")] {
        let Ok(dir) = std::fs::read_dir(&corpus) else { continue };
        let mut files: Vec<_> = dir
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "xml"))
            .collect();
        files.sort();
        for f in files {
            out.push((std::fs::read_to_string(f).unwrap(), true));
        }
    }
    let own = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sim/trees/photographer.yaml");
    out.push((std::fs::read_to_string(own).unwrap(), false));
    out.push(("root:\n  reactive_sequence:\n    - script_condition: {code: 'x > 1'}\n    - parallel:\n        success_count: 1\n        children:\n          - sleep: {msec: 200}\n          - repeat:\n              num_cycles: 3\n              child: {script: {code: 'x := 2'}}\n".into(), false));
    // Also each corpus file as YAML, to fuzz the YAML loader with rich inputs.
    let n = out.len();
    for i in 0..n {
        if out[i].1
            && let Ok(t) = xml::parse(&out[i].0, "seed")
        {
            out.push((yaml::to_yaml(&t), false));
        }
    }
    out
}

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut b = input.as_bytes().to_vec();
    for _ in 0..1 + (rng.next_u64() % 4) {
        let len = b.len().max(1);
        let at = (rng.next_u64() as usize) % len;
        match rng.next_u64() % 6 {
            0 => {
                if at < b.len() {
                    b[at] ^= 1 << (rng.next_u64() % 8);
                }
            }
            1 => {
                let end = (at + (rng.next_u64() as usize % 32)).min(b.len());
                b.drain(at.min(b.len())..end);
            }
            2 => {
                let tok = TOKENS[(rng.next_u64() as usize) % TOKENS.len()];
                let at = at.min(b.len());
                b.splice(at..at, tok.bytes());
            }
            3 => b.truncate(at),
            4 => {
                let end = (at + 1 + (rng.next_u64() as usize % 64)).min(b.len());
                let chunk: Vec<u8> = b[at.min(b.len())..end].to_vec();
                let to = (rng.next_u64() as usize) % (b.len() + 1);
                b.splice(to..to, chunk);
            }
            _ => {
                if at < b.len() {
                    b[at] = TOKENS[(rng.next_u64() as usize) % 20].as_bytes()[0];
                }
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn exercise(text: &str, is_xml: bool) {
    let parsed: Result<Tree, _> = if is_xml { xml::parse(text, "fuzz.xml") } else { yaml::parse(text, "fuzz.yaml") };
    let Ok(tree) = parsed else { return };
    let lib = NodeLibrary::builtin();
    let _strict = tree.check("fuzz", &lib, None, false);
    let Ok(checked) = tree.check("fuzz", &lib, None, true) else { return };
    // Writers must accept whatever loaded.
    let again = xml::parse(&xml::to_xml(&tree), "again.xml");
    assert!(again.is_ok(), "re-reading written XML failed: {again:?}");
    let Ok(mut ex) = Executor::new(&checked) else { return };
    let mut robot = AsyncSkills::new();
    let mem = WorkingMemory::default();
    for t in 0..20 {
        if ex.tick(SimTime::from_millis(100 * t), &mut robot, &mem, &mut NullSink).is_done() {
            break;
        }
    }
    ex.halt(SimTime::from_millis(5000), &mut robot, &mem, &mut NullSink);
}

#[test]
fn loaders_checker_and_engine_never_panic() {
    let iters: u64 = std::env::var("ARBOR_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let seconds: Option<u64> = std::env::var("ARBOR_FUZZ_SECONDS").ok().and_then(|v| v.parse().ok());
    let seed: u64 = std::env::var("ARBOR_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(1);
    let seeds = seeds();
    assert!(seeds.len() > 3);
    let mut rng = Rng::seed_from_u64(seed);
    let start = Instant::now();
    let mut n = 0u64;
    loop {
        match seconds {
            Some(s) if start.elapsed() >= Duration::from_secs(s) => break,
            None if n >= iters => break,
            _ => {}
        }
        let (seed_text, is_xml) = &seeds[(rng.next_u64() as usize) % seeds.len()];
        let input = mutate(&mut rng, seed_text);
        let outcome = std::panic::catch_unwind(|| exercise(&input, *is_xml));
        if outcome.is_err() {
            panic!("case {n} (seed {seed}) panicked on input:\n{input}");
        }
        n += 1;
    }
    println!("fuzzed {n} cases in {:.1} s", start.elapsed().as_secs_f64());
}
