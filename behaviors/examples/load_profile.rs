//! Times the stages of loading the 1000-node benchmark tree (parse, check, build):
//! `cargo run --release -p arbor-behaviors --example load_profile`.
use arbor_behaviors::bench_trees::{library, tree_a};
use arbor_behaviors::{Executor, xml};
use std::time::Instant;

fn main() {
    let text = xml::to_xml(&tree_a(10, 100));
    let lib = library();
    if let Some(stage) = std::env::args().nth(1) {
        // One stage in a loop, for a profiler: `load_profile build|parse|check`.
        let Ok(tree) = xml::parse(&text, "a.xml") else { return };
        let Ok(checked) = tree.clone().into_checked("a.xml", &lib, None, false) else { return };
        for _ in 0..5000 {
            match stage.as_str() {
                "parse" => drop(std::hint::black_box(xml::parse(&text, "a.xml"))),
                "check" => drop(std::hint::black_box(tree.clone().into_checked("a.xml", &lib, None, false))),
                _ => drop(std::hint::black_box(Executor::new(&checked))),
            }
        }
        return;
    }
    let n = 200;
    let (mut parse, mut check, mut build) = (0.0, 0.0, 0.0);
    for _ in 0..n {
        let t0 = Instant::now();
        let Ok(tree) = xml::parse(&text, "a.xml") else { return };
        let t1 = Instant::now();
        let Ok(checked) = tree.into_checked("a.xml", &lib, None, false) else { return };
        let t2 = Instant::now();
        let Ok(ex) = Executor::new(&checked) else { return };
        let t3 = Instant::now();
        std::hint::black_box(ex);
        parse += (t1 - t0).as_secs_f64();
        check += (t2 - t1).as_secs_f64();
        build += (t3 - t2).as_secs_f64();
    }
    let us = |s: f64| s / f64::from(n) * 1e6;
    println!("parse {:.1} us, check {:.1} us, build {:.1} us", us(parse), us(check), us(build));
}
