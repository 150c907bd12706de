//! `arbor memory stats|query|forget|facts|retain`: a run directory's or a robot's memory.

use anyhow::{Context, Result, bail};
use arbor_core::SimTime;
use arbor_memory::{Item, Memory, MiniLm, Query};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum MemoryCommand {
    /// Counts: events by kind, facts, profiles, embeddings, index.
    Stats {
        /// memory.sqlite, or a run directory holding one.
        db: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Ask memory a question ("where was bob last seen", "who did the robot photograph",
    /// "when did alice arrive") or search it by meaning: the answer and the evidence.
    Query {
        db: PathBuf,
        question: String,
        /// Items to show.
        #[arg(short, long, default_value_t = 8)]
        k: usize,
        /// Only items about this entity.
        #[arg(long)]
        entity: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Facts and profiles (semantic memory), optionally about one entity.
    Facts {
        db: PathBuf,
        #[arg(long)]
        entity: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove every episode, fact, profile and embedding about an entity (a person's name).
    Forget {
        db: PathBuf,
        entity: String,
        #[arg(long)]
        json: bool,
    },
    /// The "Remembered:" lines the planner gets for a goal (what `--memory` adds to a prompt).
    Context {
        db: PathBuf,
        goal: String,
        /// Token budget.
        #[arg(long, default_value_t = 120)]
        tokens: usize,
    },
    /// Drop episodes older than --max-age-s before the newest event.
    Retain {
        db: PathBuf,
        #[arg(long)]
        max_age_s: f64,
    },
}

/// The database file for a path given on the command line (never creates one).
pub fn db_path(p: &Path) -> Result<PathBuf> {
    let f = if p.is_dir() { p.join("memory.sqlite") } else { p.to_path_buf() };
    if !f.is_file() {
        bail!("no memory database at {} (give memory.sqlite or a run directory)", f.display());
    }
    Ok(f)
}

/// Opens a memory database with the embedding model and brings it up to date (consolidation,
/// embeddings, index).
pub fn open_with_model(p: &Path) -> Result<Memory> {
    let f = db_path(p)?;
    let mut mem = Memory::open(&f)?;
    mem.set_embedder(Box::new(MiniLm::from_models_dir(2)?))?;
    mem.maintain().with_context(|| format!("bringing {} up to date", f.display()))?;
    Ok(mem)
}

/// "Now" for a stored memory: its newest event (recency is relative to the robot's clock).
pub fn latest_time(mem: &Memory) -> Result<SimTime> {
    Ok(mem.episodic.latest(1)?.first().map_or(SimTime::ZERO, |s| s.event.t))
}

pub fn run(cmd: MemoryCommand) -> Result<ExitCode> {
    match cmd {
        MemoryCommand::Stats { db, json } => {
            let mem = Memory::open(db_path(&db)?)?;
            mem.check_integrity()?;
            let s = mem.stats()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "{}: {} events, {} facts, {} profiles, {} embeddings ({} events not embedded yet)",
                    s.path, s.events, s.facts, s.profiles, s.embeddings, s.unembedded_events
                );
                if let (Some(a), Some(b)) = (s.first_event_s, s.last_event_s) {
                    println!("time span: {a:.1} s .. {b:.1} s");
                }
                for (k, n) in &s.events_by_kind {
                    println!("  {k}: {n}");
                }
                println!(
                    "consolidated through event {}; index: {} vectors, {} lists; file {} bytes",
                    s.consolidated_through, s.index_rows, s.index_lists, s.file_bytes
                );
            }
        }
        MemoryCommand::Query { db, question, k, entity, json } => {
            let mut mem = open_with_model(&db)?;
            let now = latest_time(&mem)?;
            let mut answer = mem.answer(&question, now)?;
            if entity.is_some() || answer.kind == arbor_memory::QuestionKind::What {
                let mut q = Query::new(&question, now, k);
                q.entity = entity;
                answer.evidence = mem.retrieve(&q)?;
            }
            answer.evidence.truncate(k);
            if json {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            } else {
                match (&answer.answer, answer.kind) {
                    (Some(a), arbor_memory::QuestionKind::What) => println!("best match: {a}"),
                    (Some(a), _) => println!("answer: {a}"),
                    (None, _) => println!("answer: memory has nothing that answers this"),
                }
                println!("evidence (score = relevance, recency, importance):");
                for r in &answer.evidence {
                    println!(
                        "  {:.3} ({:.2}, {:.2}, {:.2})  {}",
                        r.score,
                        r.relevance,
                        r.recency,
                        r.importance,
                        r.item.line()
                    );
                }
            }
        }
        MemoryCommand::Facts { db, entity, json } => {
            let mut mem = Memory::open(db_path(&db)?)?;
            // Consolidation needs no model.
            arbor_memory::semantic::consolidate(&mut mem.episodic, 1024)?;
            let facts = mem.facts(entity.as_deref())?;
            let profiles: Vec<_> =
                mem.profiles()?.into_iter().filter(|p| entity.as_deref().is_none_or(|e| e == p.entity)).collect();
            if json {
                println!("{}", serde_json::json!({ "facts": facts, "profiles": profiles }));
            } else {
                for f in &facts {
                    println!(
                        "{:.2}  {}  (x{}, events {:?})",
                        f.confidence,
                        Item::Fact(f.clone()).line(),
                        f.count,
                        f.provenance
                    );
                }
                for p in &profiles {
                    println!(
                        "profile {}: usual place {}, places {:?}, attributes {:?}, seen {:.1}..{:.1} s",
                        p.entity,
                        p.usual_place().unwrap_or("-"),
                        p.places,
                        p.attributes,
                        p.first_seen.as_secs_f64(),
                        p.last_seen.as_secs_f64()
                    );
                }
            }
        }
        MemoryCommand::Forget { db, entity, json } => {
            let mut mem = Memory::open(db_path(&db)?)?;
            let r = mem.forget(&entity)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "forgot {}: {} episodes, {} facts, {} embeddings removed",
                    r.entity, r.events, r.facts, r.embeddings
                );
            }
        }
        MemoryCommand::Context { db, goal, tokens } => {
            for line in crate::plan::remembered(&db, &goal, tokens)? {
                println!("- {line}");
            }
        }
        MemoryCommand::Retain { db, max_age_s } => {
            if !(max_age_s.is_finite() && max_age_s >= 0.0) {
                bail!("--max-age-s must be a number of seconds >= 0, got {max_age_s}");
            }
            let mut mem = Memory::open(db_path(&db)?)?;
            let now = latest_time(&mem)?;
            let n = mem.retain(now, max_age_s)?;
            println!("dropped {n} episodes older than {max_age_s} s before t={:.1} s", now.as_secs_f64());
        }
    }
    Ok(ExitCode::SUCCESS)
}
