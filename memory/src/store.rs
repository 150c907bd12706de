//! [`Memory`]: the episodic log, semantic memory and the vector index over one SQLite file,
//! with hybrid retrieval for planning, a context builder, question answering over the log,
//! and forgetting.
//!
//! Writes on the tick loop only append events (cheap, batched). Embedding, consolidation into
//! facts and index training happen in [`Memory::maintain`], which the agent runs off the tick
//! loop (and `arbor memory` runs before answering).
//!
//! Over 600 lines: the Memory facade over one SQLite file: retrieval, answering, forgetting share its statements.

use crate::embed::{Embedder, normalize};
use crate::episodic::{EpisodicStore, Event, EventKind, MemoryError, Stored, words};
use crate::index::{VectorIndex, dot_f32, quantize};
use crate::semantic::{self, ConsolidateReport, Fact, Profile};
use arbor_core::SimTime;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const EMBED_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS embeddings (
    key   INTEGER PRIMARY KEY,
    model TEXT NOT NULL,
    scale REAL NOT NULL,
    vec   BLOB NOT NULL,
    list  INTEGER
);
CREATE TABLE IF NOT EXISTS vector_layout (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    model        TEXT NOT NULL,
    dim          INTEGER NOT NULL,
    nlist        INTEGER NOT NULL,
    trained_rows INTEGER NOT NULL,
    centroids    BLOB NOT NULL
);
";

/// Weights of the hybrid retrieval score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Weights {
    pub relevance: f32,
    pub recency: f32,
    pub importance: f32,
    /// Added when the item is about an entity the query names.
    pub entity: f32,
    /// Recency halves every this many seconds.
    pub half_life_s: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self { relevance: 1.0, recency: 0.3, importance: 0.2, entity: 0.3, half_life_s: 600.0 }
    }
}

/// A retrieval request.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    /// "Now" for recency (robot or sim time; injected, never the wall clock).
    pub now: SimTime,
    pub k: usize,
    /// Only items about this entity.
    pub entity: Option<String>,
    /// Only events of these kinds (facts are dropped when set).
    pub kinds: Vec<EventKind>,
    /// Only items at or after this time.
    pub since: Option<SimTime>,
    pub weights: Weights,
}

impl Query {
    pub fn new(text: impl Into<String>, now: SimTime, k: usize) -> Self {
        Self { text: text.into(), now, k, entity: None, kinds: Vec::new(), since: None, weights: Weights::default() }
    }
}

/// An item memory returns: an episode or a fact.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    Episode { id: i64, event: Event },
    Fact(Fact),
}

impl Item {
    pub fn time(&self) -> SimTime {
        match self {
            Item::Episode { event, .. } => event.t,
            Item::Fact(f) => f.last_seen,
        }
    }

    /// One line for a prompt or a terminal.
    pub fn line(&self) -> String {
        match self {
            Item::Episode { event, .. } => {
                let mut s = format!("[t={:.1}s] {}", event.t.as_secs_f64(), event.text);
                if let Some(p) = &event.place
                    && !event.text.contains(p.as_str())
                {
                    s.push_str(&format!(" (in the {p})"));
                }
                s
            }
            Item::Fact(f) => {
                format!("[fact, seen {}x, last t={:.1}s] {}", f.count, f.last_seen.as_secs_f64(), f.sentence())
            }
        }
    }

    fn about(&self, entity: &str) -> bool {
        match self {
            Item::Episode { event, .. } => event.entity.as_ref().is_some_and(|e| e.as_str() == entity),
            Item::Fact(f) => f.subject == entity || f.object == entity,
        }
    }
}

/// A retrieved item with its score and the parts of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Retrieved {
    pub item: Item,
    pub score: f32,
    pub relevance: f32,
    pub recency: f32,
    pub importance: f32,
}

/// What [`Memory::maintain`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct MaintainReport {
    pub consolidated: ConsolidateReport,
    pub embedded_events: u64,
    pub embedded_facts: u64,
    pub index_trained: bool,
}

/// What [`Memory::forget`] removed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ForgetReport {
    pub entity: String,
    pub events: usize,
    pub facts: usize,
    pub embeddings: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub path: String,
    pub events: u64,
    pub events_by_kind: BTreeMap<String, u64>,
    pub first_event_s: Option<f64>,
    pub last_event_s: Option<f64>,
    pub facts: u64,
    pub profiles: u64,
    pub embeddings: u64,
    pub embedding_models: Vec<String>,
    pub unembedded_events: u64,
    pub consolidated_through: i64,
    pub index_rows: usize,
    pub index_lists: usize,
    pub file_bytes: u64,
}

/// The kind of question [`Memory::answer`] recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuestionKind {
    Where,
    Who,
    When,
    What,
}

/// An answer composed from retrieved items (a rule-based reader over retrieval).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Answer {
    pub question: String,
    pub kind: QuestionKind,
    /// The entity the question is about, when it names one memory knows.
    pub subject: Option<String>,
    pub answer: Option<String>,
    pub time: Option<SimTime>,
    pub evidence: Vec<Retrieved>,
}

pub struct Memory {
    pub episodic: EpisodicStore,
    index: VectorIndex,
    embedder: Option<Box<dyn Embedder>>,
}

impl std::fmt::Debug for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memory")
            .field("episodic", &self.episodic)
            .field("index_rows", &self.index.len())
            .field("embedder", &self.embedder.as_ref().map(|e| e.model_id().to_string()))
            .finish()
    }
}

/// The text embedded for an event: its text, plus the place when the text does not say it.
pub fn embed_text(ev: &Event) -> String {
    match &ev.place {
        Some(p) if !ev.text.contains(p.as_str()) => format!("{} in the {p}", ev.text),
        _ => ev.text.clone(),
    }
}

impl Memory {
    /// Opens (creating) the memory database at `path` and loads its stored vectors.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MemoryError> {
        Self::open_with_train_at(path, 16_384)
    }

    /// Opens with a given index training threshold (the layout saved in the file is used when
    /// there is one).
    pub fn open_with_train_at(path: impl AsRef<Path>, train_at: usize) -> Result<Self, MemoryError> {
        let episodic = EpisodicStore::open(path)?;
        let err = |e| MemoryError::Sqlite { path: episodic.path().to_path_buf(), source: e };
        // Forgotten rows are overwritten on disk, not just unlinked.
        episodic.connection().pragma_update(None, "secure_delete", "ON").map_err(err)?;
        episodic.connection().execute_batch(semantic::SCHEMA).map_err(err)?;
        episodic.connection().execute_batch(EMBED_SCHEMA).map_err(err)?;
        let has_list: i64 = episodic
            .connection()
            .query_row("SELECT COUNT(*) FROM pragma_table_info('embeddings') WHERE name = 'list'", [], |r| r.get(0))
            .map_err(err)?;
        if has_list == 0 {
            episodic.connection().execute_batch("ALTER TABLE embeddings ADD COLUMN list INTEGER").map_err(err)?;
        }
        let mut index = VectorIndex::new(crate::embed::MINILM_DIM);
        index.train_at = train_at;
        let mut me = Self { episodic, index, embedder: None };
        me.load_vectors(None)?;
        Ok(me)
    }

    fn err(&self, e: rusqlite::Error) -> MemoryError {
        MemoryError::Sqlite { path: self.episodic.path().to_path_buf(), source: e }
    }

    fn load_vectors(&mut self, model: Option<&str>) -> Result<(), MemoryError> {
        let mut index = VectorIndex::new(self.index.dim());
        index.train_at = self.index.train_at;
        let dim = index.dim();
        let bad = |message: String| MemoryError::Invalid { path: self.episodic.path().to_path_buf(), message };
        {
            let conn = self.episodic.connection();
            // A saved IVF layout spares retraining (minutes at millions of rows) on every open.
            let layout: Option<(String, i64, i64, i64, Vec<u8>)> = conn
                .query_row(
                    "SELECT model, dim, nlist, trained_rows, centroids FROM vector_layout WHERE id = 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            if let Some((m, d, nlist, trained, blob)) = layout
                && model.is_none_or(|want| want == m)
                && d as usize == dim
            {
                let centroids: Vec<f32> =
                    blob.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
                if !index.restore_layout(centroids, nlist.max(0) as usize, trained.max(0) as usize) {
                    return Err(bad(format!("vector_layout: {} centroids bytes for {nlist} lists of {d}", blob.len())));
                }
            }
            let mut stmt =
                conn.prepare("SELECT key, model, scale, vec, list FROM embeddings").map_err(|e| self.err(e))?;
            let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
            let mut v = vec![0f32; dim];
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let key: i64 = r.get(0).map_err(|e| self.err(e))?;
                let m: String = r.get(1).map_err(|e| self.err(e))?;
                if model.is_some_and(|want| want != m) {
                    continue;
                }
                let scale: f64 = r.get(2).map_err(|e| self.err(e))?;
                let blob = r.get_ref(3).map_err(|e| self.err(e))?.as_blob().map_err(|e| self.err(e.into()))?;
                if blob.len() != dim {
                    return Err(bad(format!("embedding {key} has {} values, expected {dim}", blob.len())));
                }
                for (o, &b) in v.iter_mut().zip(blob) {
                    *o = f32::from(b as i8) * scale as f32;
                }
                let list: Option<i64> = r.get(4).map_err(|e| self.err(e))?;
                index.add_in_list(key, &v, list.and_then(|l| u32::try_from(l).ok()));
            }
        }
        self.index = index;
        self.maintain_index()?;
        Ok(())
    }

    /// Trains the index when due and saves its layout (centroids, each row's list).
    fn maintain_index(&mut self) -> Result<bool, MemoryError> {
        if !self.index.maintain() {
            return Ok(false);
        }
        let Some((centroids, nlist, trained)) = self.index.layout() else { return Ok(false) };
        let blob: Vec<u8> = centroids.iter().flat_map(|x| x.to_le_bytes()).collect();
        let model = self.embedder.as_ref().map(|e| e.model_id().to_string()).unwrap_or_else(|| {
            self.episodic
                .connection()
                .query_row("SELECT model FROM embeddings LIMIT 1", [], |r| r.get::<_, String>(0))
                .unwrap_or_default()
        });
        let (dim, assignments): (usize, Vec<(i64, u32)>) = (self.index.dim(), self.index.assignments().collect());
        let path = self.episodic.path().to_path_buf();
        let err = |e| MemoryError::Sqlite { path: path.clone(), source: e };
        let tx = self.episodic.connection_mut().transaction().map_err(err)?;
        tx.execute(
            "INSERT OR REPLACE INTO vector_layout (id, model, dim, nlist, trained_rows, centroids) \
             VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![model, dim as i64, nlist as i64, trained as i64, blob],
        )
        .map_err(err)?;
        {
            let mut stmt = tx.prepare_cached("UPDATE embeddings SET list = ?2 WHERE key = ?1").map_err(err)?;
            for (k, l) in assignments {
                stmt.execute(params![k, i64::from(l)]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(true)
    }

    /// Gives memory a text embedder. Vectors stored by another model are set aside (and
    /// re-embedded by [`maintain`](Self::maintain)).
    pub fn set_embedder(&mut self, embedder: Box<dyn Embedder>) -> Result<(), MemoryError> {
        let id = embedder.model_id().to_string();
        let other: i64 = self
            .episodic
            .connection()
            .query_row("SELECT COUNT(*) FROM embeddings WHERE model != ?1", [&id], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if other > 0 {
            self.episodic
                .connection()
                .execute("DELETE FROM embeddings WHERE model != ?1", [&id])
                .map_err(|e| self.err(e))?;
            self.load_vectors(Some(&id))?;
        }
        self.embedder = Some(embedder);
        Ok(())
    }

    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    pub fn index(&self) -> &VectorIndex {
        &self.index
    }

    /// Lowers the row count at which the IVF layer is trained (tests, small robots).
    pub fn set_index_train_at(&mut self, rows: usize) {
        self.index.train_at = rows;
    }

    pub fn append(&mut self, ev: Event) -> Result<(), MemoryError> {
        self.episodic.append(ev)
    }

    pub fn flush(&mut self) -> Result<(), MemoryError> {
        self.episodic.flush()
    }

    fn store_vectors(&mut self, keyed: &[(i64, Vec<f32>)]) -> Result<(), MemoryError> {
        let model = self.embedder.as_ref().map(|e| e.model_id().to_string()).unwrap_or_default();
        let path = self.episodic.path().to_path_buf();
        let err = |e| MemoryError::Sqlite { path: path.clone(), source: e };
        let tx = self.episodic.connection_mut().transaction().map_err(err)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO embeddings (key, model, scale, vec, list) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for (key, v) in keyed {
                self.index.add(*key, v);
                let (q, scale) = quantize(v);
                let bytes: Vec<u8> = q.iter().map(|&x| x as u8).collect();
                let list = self.index.list_of(*key).map(i64::from);
                stmt.execute(params![key, model, f64::from(scale), bytes, list]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Stores vectors computed elsewhere (keys: event id, or minus a fact id) under the current
    /// embedder's model id, e.g. captions embedded on another machine. Vectors must be unit
    /// length with the index's dimension.
    pub fn put_embeddings(&mut self, keyed: &[(i64, Vec<f32>)]) -> Result<(), MemoryError> {
        if let Some((k, v)) = keyed.iter().find(|(_, v)| v.len() != self.index.dim()) {
            return Err(MemoryError::Invalid {
                path: self.episodic.path().to_path_buf(),
                message: format!("embedding for key {k} has {} values, expected {}", v.len(), self.index.dim()),
            });
        }
        self.store_vectors(keyed)
    }

    fn embedder(&mut self) -> Result<&mut Box<dyn Embedder>, MemoryError> {
        let path = self.episodic.path().to_path_buf();
        self.embedder.as_mut().ok_or_else(|| MemoryError::Invalid {
            path,
            message: "no embedding model loaded (relevance needs one: run `bash .ci/models`)".into(),
        })
    }

    /// Embeds up to `limit` events and facts that have no vector yet; returns how many.
    pub fn embed_pending(&mut self, limit: usize) -> Result<(u64, u64), MemoryError> {
        if self.embedder.is_none() {
            return Ok((0, 0));
        }
        self.flush()?;
        let events = self.episodic.query_stored(
            "SELECT id, t_us, kind, entity, place, text, x, y FROM events e \
             WHERE NOT EXISTS (SELECT 1 FROM embeddings WHERE key = e.id) ORDER BY id LIMIT ?1",
            &[&(limit as i64)],
        )?;
        let texts: Vec<String> = events.iter().map(|s| embed_text(&s.event)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vecs = self.embedder()?.embed(&refs)?;
        let keyed: Vec<(i64, Vec<f32>)> = events.iter().map(|s| s.id).zip(vecs).collect();
        self.store_vectors(&keyed)?;
        let n_events = keyed.len() as u64;
        let fact_ids: Vec<i64> = {
            let mut stmt = self
                .episodic
                .connection()
                .prepare(
                    "SELECT id FROM facts f WHERE NOT EXISTS (SELECT 1 FROM embeddings WHERE key = -f.id) \
                     ORDER BY id LIMIT ?1",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt.query_map([limit as i64], |r| r.get::<_, i64>(0)).map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let facts = semantic::facts_by_ids(&self.episodic, &fact_ids)?;
        let texts: Vec<String> = facts.iter().map(Fact::sentence).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vecs = self.embedder()?.embed(&refs)?;
        let keyed: Vec<(i64, Vec<f32>)> = facts.iter().map(|f| -f.id).zip(vecs).collect();
        self.store_vectors(&keyed)?;
        Ok((n_events, keyed.len() as u64))
    }

    /// Consolidates new episodes into facts, embeds what has no vector, trains the index when
    /// due. Idempotent; run it off the tick loop.
    pub fn maintain(&mut self) -> Result<MaintainReport, MemoryError> {
        self.flush()?;
        let consolidated = semantic::consolidate(&mut self.episodic, 1024)?;
        let mut report = MaintainReport { consolidated, ..Default::default() };
        loop {
            let (e, f) = self.embed_pending(512)?;
            report.embedded_events += e;
            report.embedded_facts += f;
            if e + f == 0 {
                break;
            }
        }
        report.index_trained = self.maintain_index()?;
        Ok(report)
    }

    pub fn profiles(&self) -> Result<Vec<Profile>, MemoryError> {
        semantic::profiles(&self.episodic)
    }

    pub fn facts(&self, entity: Option<&str>) -> Result<Vec<Fact>, MemoryError> {
        semantic::facts(&self.episodic, entity)
    }

    /// Entities memory knows that `text` names (whole-word, case-insensitive).
    pub fn named_entities(&self, text: &str) -> Result<Vec<String>, MemoryError> {
        let ws: BTreeSet<String> = words(text).collect();
        Ok(self.profiles()?.into_iter().map(|p| p.entity).filter(|e| ws.contains(&e.to_lowercase())).collect())
    }

    /// Hybrid retrieval: candidates from the vector index, the latest events and the events
    /// about entities the query names; scored by relevance, recency and importance.
    pub fn retrieve(&mut self, q: &Query) -> Result<Vec<Retrieved>, MemoryError> {
        if q.text.trim().is_empty() {
            return Err(MemoryError::Invalid {
                path: self.episodic.path().to_path_buf(),
                message: "the query is empty: ask a question or give words to search for".into(),
            });
        }
        let mut qv = self.embedder()?.embed(&[q.text.as_str()])?.pop().unwrap_or_default();
        normalize(&mut qv);
        self.retrieve_by_vector(q, &qv)
    }

    /// [`retrieve`](Self::retrieve) with the query's embedding already computed.
    pub fn retrieve_by_vector(&mut self, q: &Query, qv: &[f32]) -> Result<Vec<Retrieved>, MemoryError> {
        self.flush()?;
        let named = self.named_entities(&q.text)?;
        let pool = (q.k * 8).max(64);
        let mut keys: BTreeSet<i64> = self.index.search(qv, pool).iter().map(|h| h.key).collect();
        keys.extend(self.episodic.latest(32)?.iter().map(|s| s.id));
        for e in named.iter().chain(q.entity.iter()) {
            let about = self.episodic.query_stored(
                "SELECT id, t_us, kind, entity, place, text, x, y FROM events WHERE entity = ?1 \
                 ORDER BY t_us DESC, id DESC LIMIT 32",
                &[e],
            )?;
            keys.extend(about.iter().map(|s| s.id));
            keys.extend(self.facts(Some(e))?.iter().map(|f| -f.id));
        }
        let event_ids: Vec<i64> = keys.iter().copied().filter(|k| *k > 0).collect();
        let fact_ids: Vec<i64> = keys.iter().copied().filter(|k| *k < 0).map(|k| -k).collect();
        let mut items: Vec<(i64, Item)> = self
            .episodic
            .by_ids(&event_ids)?
            .into_iter()
            .map(|Stored { id, event }| (id, Item::Episode { id, event }))
            .collect();
        if q.kinds.is_empty() {
            items
                .extend(semantic::facts_by_ids(&self.episodic, &fact_ids)?.into_iter().map(|f| (-f.id, Item::Fact(f))));
        }
        let w = q.weights;
        let mut out = Vec::with_capacity(items.len());
        for (key, item) in items {
            if let Some(e) = &q.entity
                && !item.about(e)
            {
                continue;
            }
            if q.since.is_some_and(|s| item.time() < s) {
                continue;
            }
            let (importance, kind_ok) = match &item {
                Item::Episode { event, .. } => {
                    (event.kind.importance(), q.kinds.is_empty() || q.kinds.contains(&event.kind))
                }
                Item::Fact(f) => (0.5 * f.confidence as f32, true),
            };
            if !kind_ok {
                continue;
            }
            let relevance = self.index.similarity(key, qv).unwrap_or(0.0);
            let age = q.now.as_secs_f64() - item.time().as_secs_f64();
            let recency = 0.5f64.powf(age.max(0.0) / w.half_life_s.max(1e-6)) as f32;
            let named_bonus = if named.iter().any(|e| item.about(e)) { w.entity } else { 0.0 };
            let score = w.relevance * relevance + w.recency * recency + w.importance * importance + named_bonus;
            out.push(Retrieved { item, score, relevance, recency, importance });
        }
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(b.item.time().cmp(&a.item.time())));
        out.truncate(q.k);
        Ok(out)
    }

    /// Answers a where / who / when question from retrieved items.
    pub fn answer(&mut self, question: &str, now: SimTime) -> Result<Answer, MemoryError> {
        let ws: Vec<String> = words(question).collect();
        let kind = match ws.first().map(String::as_str) {
            Some("where") => QuestionKind::Where,
            Some("who" | "whom") => QuestionKind::Who,
            Some("when") => QuestionKind::When,
            _ => QuestionKind::What,
        };
        let subject = self.named_entities(question)?.into_iter().next();
        let mut q = Query::new(question, now, 24);
        q.entity = subject.clone();
        let evidence = self.retrieve(&q)?;
        let first = ws.iter().any(|w| matches!(w.as_str(), "first" | "arrive" | "arrived" | "appear" | "appeared"));
        // Where and when are asked about someone or something memory knows, or about the robot
        // itself; of a name memory never met ("where was frank") the honest answer is none (the
        // evidence is still given, nearest first).
        let about_robot = ws.iter().any(|w| matches!(w.as_str(), "you" | "robot" | "i" | "we" | "your"));
        let unknown_subject = subject.is_none() && !about_robot;
        // What the question asks happened: a photo, a sighting, speech (when/where of that kind).
        let asked_kind = if ws.iter().any(|w| w.starts_with("photo") || w.starts_with("picture")) {
            Some(EventKind::PhotoTaken)
        } else if ws.iter().any(|w| matches!(w.as_str(), "said" | "say" | "says" | "told" | "tell")) {
            Some(EventKind::Said)
        } else {
            None
        };
        let episodes = || {
            evidence.iter().filter_map(|r| match &r.item {
                Item::Episode { event, .. } => Some((r, event)),
                Item::Fact(_) => None,
            })
        };
        fn pick(mut v: Vec<&Event>, first: bool) -> Option<&Event> {
            v.sort_by_key(|e| e.t);
            if first { v.first().copied() } else { v.last().copied() }
        }
        let (answer, time) = match kind {
            QuestionKind::Where | QuestionKind::When if unknown_subject => (None, None),
            QuestionKind::Where => {
                let hit = pick(
                    episodes()
                        .filter(|(_, e)| e.place.is_some())
                        .filter(|(_, e)| asked_kind.is_none_or(|k| e.kind == k))
                        .map(|(_, e)| e)
                        .collect(),
                    first,
                );
                (hit.and_then(|e| e.place.clone()), hit.map(|e| e.t))
            }
            QuestionKind::When => {
                let hit = pick(
                    episodes()
                        .filter(|(_, e)| {
                            subject.is_none() || e.entity.as_ref().map(|x| x.as_str()) == subject.as_deref()
                        })
                        .filter(|(_, e)| e.kind != EventKind::EntityLeft || !first)
                        .filter(|(_, e)| asked_kind.is_none_or(|k| e.kind == k))
                        .map(|(_, e)| e)
                        .collect(),
                    first,
                );
                (hit.map(|e| format!("t={:.1}s", e.t.as_secs_f64())), hit.map(|e| e.t))
            }
            QuestionKind::Who => {
                // The kind of event the best hit is; every entity with an event of that kind.
                let top_kind = episodes().find(|(_, e)| e.entity.is_some()).map(|(_, e)| e.kind);
                let names: BTreeSet<String> = episodes()
                    .filter(|(_, e)| Some(e.kind) == top_kind)
                    .filter_map(|(_, e)| e.entity.as_ref().map(|x| x.as_str().to_string()))
                    .collect();
                let names: Vec<String> = names.into_iter().collect();
                ((!names.is_empty()).then(|| names.join(", ")), None)
            }
            QuestionKind::What => (evidence.first().map(|r| r.item.line()), evidence.first().map(|r| r.item.time())),
        };
        Ok(Answer { question: question.to_string(), kind, subject, answer, time, evidence })
    }

    /// Removes every episode, fact, profile and embedding about `entity`.
    pub fn forget(&mut self, entity: &str) -> Result<ForgetReport, MemoryError> {
        self.flush()?;
        let event_ids = self.episodic.delete_about(entity)?;
        let fact_ids = semantic::forget(&mut self.episodic, entity)?;
        let keys: Vec<i64> = event_ids.iter().copied().chain(fact_ids.iter().map(|f| -f)).collect();
        let embeddings = self.delete_embeddings(&keys)?;
        // The full-text index keeps deleted terms until its segments merge: merge them now. Then
        // rebuild the file from its live rows (VACUUM): secure_delete zeroes deleted cells, but
        // not the stale copies an earlier page rewrite left in a page's free space, nor pages
        // written before it was on. Last, move the WAL into the main file and truncate it.
        self.episodic
            .connection()
            .execute_batch(
                "INSERT INTO events_fts(events_fts) VALUES ('optimize'); PRAGMA wal_checkpoint(TRUNCATE); \
                 VACUUM; PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(|e| self.err(e))?;
        Ok(ForgetReport { entity: entity.to_string(), events: event_ids.len(), facts: fact_ids.len(), embeddings })
    }

    fn delete_embeddings(&mut self, keys: &[i64]) -> Result<usize, MemoryError> {
        let path = self.episodic.path().to_path_buf();
        let err = |e| MemoryError::Sqlite { path: path.clone(), source: e };
        let tx = self.episodic.connection_mut().transaction().map_err(err)?;
        let mut n = 0;
        {
            let mut stmt = tx.prepare_cached("DELETE FROM embeddings WHERE key = ?1").map_err(err)?;
            for k in keys {
                n += stmt.execute([k]).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        for k in keys {
            self.index.remove(*k);
        }
        Ok(n)
    }

    /// Drops episodes older than `max_age_s` before `now` (and their vectors); returns how many.
    pub fn retain(&mut self, now: SimTime, max_age_s: f64) -> Result<usize, MemoryError> {
        self.flush()?;
        let cutoff = SimTime::from_secs_f64((now.as_secs_f64() - max_age_s).max(0.0));
        let ids = self.episodic.delete_before(cutoff)?;
        self.delete_embeddings(&ids)?;
        Ok(ids.len())
    }

    /// SQLite's `quick_check` over every page: a damaged database is an error naming the file and
    /// the first problem found, not figures read from whatever pages still parse.
    pub fn check_integrity(&self) -> Result<(), MemoryError> {
        let conn = self.episodic.connection();
        let mut stmt = conn.prepare("PRAGMA quick_check(5)").map_err(|e| self.err(e))?;
        let rows: Vec<String> =
            stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?.filter_map(Result::ok).collect();
        if rows.len() == 1 && rows[0] == "ok" {
            return Ok(());
        }
        Err(MemoryError::Invalid {
            path: self.episodic.path().to_path_buf(),
            message: format!("damaged: {}", rows.join("; ")),
        })
    }

    pub fn stats(&self) -> Result<Stats, MemoryError> {
        let conn = self.episodic.connection();
        let count = |sql: &str| -> Result<u64, MemoryError> {
            conn.query_row(sql, [], |r| r.get::<_, i64>(0)).map(|n| n.max(0) as u64).map_err(|e| self.err(e))
        };
        let mut by_kind = BTreeMap::new();
        {
            let mut stmt = conn.prepare("SELECT kind, COUNT(*) FROM events GROUP BY kind").map_err(|e| self.err(e))?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))).map_err(|e| self.err(e))?;
            for row in rows {
                let (k, n) = row.map_err(|e| self.err(e))?;
                by_kind.insert(k, n.max(0) as u64);
            }
        }
        let range: (Option<i64>, Option<i64>) = conn
            .query_row("SELECT MIN(t_us), MAX(t_us) FROM events", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(|e| self.err(e))?;
        let models: Vec<String> = {
            let mut stmt =
                conn.prepare("SELECT DISTINCT model FROM embeddings ORDER BY model").map_err(|e| self.err(e))?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        Ok(Stats {
            path: self.episodic.path().display().to_string(),
            events: count("SELECT COUNT(*) FROM events")?,
            events_by_kind: by_kind,
            first_event_s: range.0.map(|t| t as f64 / 1e6),
            last_event_s: range.1.map(|t| t as f64 / 1e6),
            facts: count("SELECT COUNT(*) FROM facts")?,
            profiles: count("SELECT COUNT(*) FROM profiles")?,
            embeddings: count("SELECT COUNT(*) FROM embeddings")?,
            embedding_models: models,
            unembedded_events: count(
                "SELECT COUNT(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM embeddings WHERE key = e.id)",
            )?,
            consolidated_through: semantic::meta_get(&self.episodic, "consolidated_through")?
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            index_rows: self.index.len(),
            index_lists: self.index.lists(),
            file_bytes: std::fs::metadata(self.episodic.path()).map(|m| m.len()).unwrap_or(0),
        })
    }
}

/// Rough token count (4 characters per token) for budgeting a prompt without a tokenizer.
pub fn approx_tokens(s: &str) -> usize {
    s.len().div_ceil(4)
}

/// Fits the best items (in score order) into `budget` tokens, one line each, and returns the
/// block in time order (what happened first comes first). Repeats of the same episode (the
/// same text about the same entity and place) fold into one line with a count and time span.
pub fn build_context(items: &[Retrieved], budget: usize, count_tokens: &dyn Fn(&str) -> usize) -> String {
    // Group repeats, keeping the order of their best-scored member.
    let mut groups: Vec<(String, Vec<&Retrieved>)> = Vec::new();
    for r in items {
        let key = match &r.item {
            Item::Episode { event, .. } => {
                format!("{}|{:?}|{:?}|{}", event.kind, event.entity, event.place, event.text)
            }
            Item::Fact(f) => format!("fact|{}", f.id),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push(r),
            None => groups.push((key, vec![r])),
        }
    }
    let mut used = 0;
    let mut chosen: Vec<(SimTime, String)> = Vec::new();
    for (_, g) in &groups {
        let first = g.iter().map(|r| r.item.time()).min().unwrap_or(SimTime::ZERO);
        let last = g.iter().map(|r| r.item.time()).max().unwrap_or(SimTime::ZERO);
        let line = match (&g[0].item, g.len()) {
            (Item::Episode { .. }, n) if n > 1 => {
                let mut one = g[0].item.line();
                if let Some(rest) = one.strip_prefix('[').and_then(|x| x.split_once("] ")).map(|x| x.1.to_string()) {
                    one = rest;
                }
                format!("[{n}x, t={:.1}..{:.1}s] {one}", first.as_secs_f64(), last.as_secs_f64())
            }
            (item, _) => item.line(),
        };
        let cost = count_tokens(&line) + 1;
        if used + cost > budget {
            continue;
        }
        used += cost;
        chosen.push((last, line));
    }
    chosen.sort_by_key(|(t, _)| *t);
    chosen.iter().map(|(_, l)| format!("- {l}\n")).collect()
}

impl VectorIndex {
    /// Cosine similarity of the stored vector for `key` with `query`, if it has one.
    pub fn similarity(&self, key: i64, query: &[f32]) -> Option<f32> {
        self.vector(key).map(|v| dot_f32(&v, query))
    }
}
