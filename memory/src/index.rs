//! A vector index for top-k by cosine similarity that stays fast at a million items.
//!
//! Vectors are unit length; each is stored as int8 with one scale (388 bytes at 384-d instead
//! of 1536), in lists whose codes lie contiguously so that a scan streams through memory.
//! Below [`VectorIndex::train_at`] rows there is one list and a query scans it all (exact).
//! Above it an inverted-file layer (IVF: spherical k-means centroids, one list per centroid) is
//! trained by [`VectorIndex::maintain`], off the hot path; a query then scans the lists of the
//! centroids closest to it, nearest first, until `nprobe` lists or the row budget. New rows join
//! their nearest list at once; the centroids are retrained when the index has grown fourfold
//! since the last training. Removal takes the row out of its list at once.

use arbor_core::Rng;
use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};

#[derive(Debug, Clone, Default)]
struct List {
    rows: Vec<u32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

#[derive(Debug, Clone)]
struct Centroids {
    data: Vec<f32>,
    trained_rows: usize,
}

#[derive(Debug, Clone)]
pub struct VectorIndex {
    dim: usize,
    /// Key of each row ever added (rows are never reused).
    keys: Vec<i64>,
    /// Where each row's codes are: (list, position); `None` once removed.
    loc: Vec<Option<(u32, u32)>>,
    rows: HashMap<i64, u32>,
    /// One list before training, one per centroid after.
    lists: Vec<List>,
    centroids: Option<Centroids>,
    /// Rows needed before the IVF layer is trained (exact scans below).
    pub train_at: usize,
    /// Most lists scanned per query (0 = chosen from the number of lists).
    pub nprobe: usize,
    /// Rows a query scans at most once its first list is done (0 = max(16384, rows / 40)):
    /// bounds latency when the data crowd a few lists.
    pub scan_budget: usize,
    seed: u64,
}

/// One search hit: the key given to [`VectorIndex::add`] and the cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub key: i64,
    pub score: f32,
}

#[derive(PartialEq)]
struct MinHit(f32, u32);
impl Eq for MinHit {}
impl PartialOrd for MinHit {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MinHit {
    // Reversed: the heap's top is the worst hit kept so far.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(other.1.cmp(&self.1))
    }
}

struct TopK {
    k: usize,
    heap: BinaryHeap<MinHit>,
}

impl TopK {
    fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k + 1) }
    }
    #[inline]
    fn would_keep(&self, score: f32) -> bool {
        self.heap.len() < self.k || self.heap.peek().is_some_and(|top| score > top.0)
    }
    #[inline]
    fn push(&mut self, score: f32, row: u32) {
        if self.heap.len() < self.k {
            self.heap.push(MinHit(score, row));
        } else if let Some(top) = self.heap.peek()
            && score > top.0
        {
            self.heap.pop();
            self.heap.push(MinHit(score, row));
        }
    }
    fn into_sorted(self) -> Vec<(f32, u32)> {
        let mut v: Vec<(f32, u32)> = self.heap.into_iter().map(|MinHit(s, r)| (s, r)).collect();
        v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        v
    }
}

#[inline]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    // Chunks of 32 let the compiler keep several 16-bit multiply-add lanes busy.
    let mut acc = [0i32; 32];
    let (ca, ra) = a.as_chunks::<32>();
    let (cb, rb) = b.as_chunks::<32>();
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..32 {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    let mut s: i32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += i32::from(*x) * i32::from(*y);
    }
    s
}

#[inline]
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, ra) = a.as_chunks::<16>();
    let (cb, rb) = b.as_chunks::<16>();
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// int8 codes and the scale that maps them back (`x ~= code * scale`).
pub fn quantize(v: &[f32]) -> (Vec<i8>, f32) {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; v.len()], 0.0);
    }
    let scale = max / 127.0;
    (v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

impl VectorIndex {
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            keys: Vec::new(),
            loc: Vec::new(),
            rows: HashMap::new(),
            lists: vec![List::default()],
            centroids: None,
            train_at: 16_384,
            nprobe: 0,
            scan_budget: 0,
            seed: 0x005e_ed1d,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Live rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn contains(&self, key: i64) -> bool {
        self.rows.contains_key(&key)
    }

    /// Number of IVF lists (0 while the index scans exhaustively).
    pub fn lists(&self) -> usize {
        if self.centroids.is_some() { self.lists.len() } else { 0 }
    }

    /// Sizes of the IVF lists (empty before training).
    pub fn list_sizes(&self) -> Vec<usize> {
        if self.centroids.is_some() { self.lists.iter().map(|l| l.rows.len()).collect() } else { Vec::new() }
    }

    /// Bytes held by the vectors and their bookkeeping (approximate).
    pub fn memory_bytes(&self) -> usize {
        self.rows.len() * (self.dim + 4 + 4)
            + self.keys.len() * (8 + 12)
            + self.rows.len() * 16
            + self.centroids.as_ref().map_or(0, |c| c.data.len() * 4)
    }

    fn push_row(&mut self, key: i64, q: &[i8], scale: f32, list: usize) {
        let row = self.keys.len() as u32;
        let l = &mut self.lists[list];
        let pos = l.rows.len() as u32;
        l.rows.push(row);
        l.codes.extend_from_slice(q);
        l.scales.push(scale);
        self.keys.push(key);
        self.loc.push(Some((list as u32, pos)));
        self.rows.insert(key, row);
    }

    /// Adds (or replaces) the vector for `key`. `v` must have [`dim`](Self::dim) entries.
    pub fn add(&mut self, key: i64, v: &[f32]) {
        debug_assert_eq!(v.len(), self.dim);
        if v.len() != self.dim {
            return;
        }
        self.remove(key);
        let (q, scale) = quantize(v);
        let list = match &self.centroids {
            Some(c) => nearest(&c.data, self.lists.len(), self.dim, v),
            None => 0,
        };
        self.push_row(key, &q, scale, list);
    }

    /// Adds a row whose list is known (from a saved layout); an unknown or out-of-range list
    /// is assigned as in [`add`](Self::add).
    pub fn add_in_list(&mut self, key: i64, v: &[f32], list: Option<u32>) {
        match list {
            Some(l) if self.centroids.is_some() && (l as usize) < self.lists.len() && v.len() == self.dim => {
                self.remove(key);
                let (q, scale) = quantize(v);
                self.push_row(key, &q, scale, l as usize);
            }
            _ => self.add(key, v),
        }
    }

    /// Drops `key`; returns whether it was there.
    pub fn remove(&mut self, key: i64) -> bool {
        let Some(row) = self.rows.remove(&key) else { return false };
        let Some((l, pos)) = self.loc[row as usize].take() else { return true };
        let d = self.dim;
        let list = &mut self.lists[l as usize];
        let (pos, last) = (pos as usize, list.rows.len() - 1);
        list.rows.swap_remove(pos);
        list.scales.swap_remove(pos);
        if pos != last {
            list.codes.copy_within(last * d..(last + 1) * d, pos * d);
            let moved = list.rows[pos];
            self.loc[moved as usize] = Some((l, pos as u32));
        }
        list.codes.truncate(last * d);
        true
    }

    /// The IVF list `key` is in (after training).
    pub fn list_of(&self, key: i64) -> Option<u32> {
        self.centroids.as_ref()?;
        let r = *self.rows.get(&key)? as usize;
        self.loc[r].map(|(l, _)| l)
    }

    /// The trained IVF layer: centroids (nlist x dim, row-major), nlist, rows at training.
    pub fn layout(&self) -> Option<(&[f32], usize, usize)> {
        self.centroids.as_ref().map(|c| (c.data.as_slice(), self.lists.len(), c.trained_rows))
    }

    /// Installs a saved IVF layer (from [`layout`](Self::layout)) on an empty index, so that
    /// rows added with [`add_in_list`](Self::add_in_list) need no assignment.
    pub fn restore_layout(&mut self, centroids: Vec<f32>, nlist: usize, trained_rows: usize) -> bool {
        if nlist == 0 || centroids.len() != nlist * self.dim || !self.rows.is_empty() {
            return false;
        }
        self.centroids = Some(Centroids { data: centroids, trained_rows });
        self.lists = vec![List::default(); nlist];
        true
    }

    /// Every live key and its list.
    pub fn assignments(&self) -> impl Iterator<Item = (i64, u32)> + '_ {
        self.lists
            .iter()
            .enumerate()
            .flat_map(move |(l, list)| list.rows.iter().map(move |&r| (self.keys[r as usize], l as u32)))
    }

    /// The stored (dequantized) vector for `key`.
    pub fn vector(&self, key: i64) -> Option<Vec<f32>> {
        let r = *self.rows.get(&key)? as usize;
        let (l, pos) = self.loc[r]?;
        let list = &self.lists[l as usize];
        let s = list.scales[pos as usize];
        let d = self.dim;
        Some(list.codes[pos as usize * d..(pos as usize + 1) * d].iter().map(|&q| f32::from(q) * s).collect())
    }

    /// Whether [`maintain`](Self::maintain) would (re)train now.
    pub fn needs_training(&self) -> bool {
        let n = self.len();
        n >= self.train_at && self.centroids.as_ref().is_none_or(|c| n >= 4 * c.trained_rows)
    }

    /// Trains or retrains the IVF layer when due. Returns whether it trained. Costs tens of
    /// seconds at a million rows on two cores: call it off the tick loop.
    pub fn maintain(&mut self) -> bool {
        if !self.needs_training() {
            return false;
        }
        self.train();
        true
    }

    fn train(&mut self) {
        let d = self.dim;
        // Gather every live row contiguously (row ids, codes, scales).
        let n = self.rows.len();
        let mut rows: Vec<u32> = Vec::with_capacity(n);
        let mut data: Vec<i8> = Vec::with_capacity(n * d);
        let mut scales: Vec<f32> = Vec::with_capacity(n);
        for list in std::mem::take(&mut self.lists) {
            rows.extend_from_slice(&list.rows);
            data.extend_from_slice(&list.codes);
            scales.extend_from_slice(&list.scales);
        }
        let row_f32 = |i: usize, out: &mut [f32]| {
            let s = scales[i];
            for (o, &q) in out.iter_mut().zip(&data[i * d..(i + 1) * d]) {
                *o = f32::from(q) * s;
            }
        };
        let nlist = ((n as f64).sqrt() as usize).clamp(16, 1024);
        // Spherical k-means on an evenly spaced, seeded sample of 24 rows per list; the
        // assignment steps compare int8 codes, which keeps training a million rows within
        // tens of seconds on two cores.
        let mut rng = Rng::seed_from_u64(self.seed ^ n as u64);
        let sample_n = (24 * nlist).min(n);
        let offset = (rng.next_u64() as usize) % (n / sample_n).max(1);
        let sample: Vec<u32> = (0..sample_n).map(|i| (offset + i * n / sample_n).min(n - 1) as u32).collect();
        let mut centroids: Vec<f32> = vec![0f32; nlist * d];
        for c in 0..nlist {
            row_f32(sample[c * sample_n / nlist] as usize, &mut centroids[c * d..(c + 1) * d]);
        }
        let mut assign = vec![0u32; sample_n];
        let mut row = vec![0f32; d];
        for _ in 0..8 {
            let (cq, cs) = quantize_rows(&centroids, d);
            assign_parallel(&cq, &cs, nlist, d, &data, &sample, &mut assign);
            let mut sums = vec![0f32; nlist * d];
            let mut counts = vec![0usize; nlist];
            for (i, &c) in assign.iter().enumerate() {
                let c = c as usize;
                counts[c] += 1;
                row_f32(sample[i] as usize, &mut row);
                for (s, x) in sums[c * d..(c + 1) * d].iter_mut().zip(&row) {
                    *s += x;
                }
            }
            for c in 0..nlist {
                let dst = &mut centroids[c * d..(c + 1) * d];
                if counts[c] == 0 {
                    // An empty list takes a random sample row.
                    row_f32(sample[(rng.next_u64() as usize) % sample_n] as usize, dst);
                } else {
                    dst.copy_from_slice(&sums[c * d..(c + 1) * d]);
                }
                crate::embed::normalize(dst);
            }
        }
        let (cq, cs) = quantize_rows(&centroids, d);
        let all: Vec<u32> = (0..n as u32).collect();
        let mut assign = vec![0u32; n];
        assign_parallel(&cq, &cs, nlist, d, &data, &all, &mut assign);
        let mut lists = vec![List::default(); nlist];
        for (i, &c) in assign.iter().enumerate() {
            let list = &mut lists[c as usize];
            self.loc[rows[i] as usize] = Some((c, list.rows.len() as u32));
            list.rows.push(rows[i]);
            list.codes.extend_from_slice(&data[i * d..(i + 1) * d]);
            list.scales.push(scales[i]);
        }
        self.lists = lists;
        self.centroids = Some(Centroids { data: centroids, trained_rows: n });
    }

    fn effective_nprobe(&self, nlist: usize) -> usize {
        if self.nprobe > 0 { self.nprobe.min(nlist) } else { (nlist / 24).clamp(8, 64).min(nlist) }
    }

    fn scan(&self, list: &List, q: &[i8], qs: f32, top: &mut TopK, keep: &impl Fn(i64) -> bool) {
        let d = self.dim;
        for (i, (&row, &s)) in list.rows.iter().zip(&list.scales).enumerate() {
            let score = dot_i8(q, &list.codes[i * d..(i + 1) * d]) as f32 * qs * s;
            if top.would_keep(score) && keep(self.keys[row as usize]) {
                top.push(score, row);
            }
        }
    }

    /// The `k` rows most similar to `query` (a unit vector): approximate once the IVF layer
    /// is trained, exact before.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<Hit> {
        self.search_filtered(query, k, |_| true)
    }

    /// As [`search`](Self::search), keeping only keys `keep` accepts.
    pub fn search_filtered(&self, query: &[f32], k: usize, keep: impl Fn(i64) -> bool) -> Vec<Hit> {
        if k == 0 || query.len() != self.dim || self.rows.is_empty() {
            return Vec::new();
        }
        let (q, qs) = quantize(query);
        let mut top = TopK::new(k);
        let d = self.dim;
        match &self.centroids {
            None => self.lists.iter().for_each(|l| self.scan(l, &q, qs, &mut top, &keep)),
            Some(c) => {
                let nlist = self.lists.len();
                let mut best = TopK::new(self.effective_nprobe(nlist));
                for i in 0..nlist {
                    best.push(dot_f32(query, &c.data[i * d..(i + 1) * d]), i as u32);
                }
                let budget = if self.scan_budget > 0 { self.scan_budget } else { (self.rows.len() / 40).max(16_384) };
                let mut scanned = 0;
                for (_, l) in best.into_sorted() {
                    if scanned >= budget {
                        break;
                    }
                    let list = &self.lists[l as usize];
                    self.scan(list, &q, qs, &mut top, &keep);
                    scanned += list.rows.len();
                }
            }
        }
        top.into_sorted().into_iter().map(|(score, r)| Hit { key: self.keys[r as usize], score }).collect()
    }

    /// Exact top-k over every row (the reference the approximate search is measured against).
    pub fn search_exact(&self, query: &[f32], k: usize) -> Vec<Hit> {
        let (q, qs) = quantize(query);
        let mut top = TopK::new(k);
        self.lists.iter().for_each(|l| self.scan(l, &q, qs, &mut top, &|_| true));
        top.into_sorted().into_iter().map(|(score, r)| Hit { key: self.keys[r as usize], score }).collect()
    }
}

fn nearest(centroids: &[f32], nlist: usize, d: usize, v: &[f32]) -> usize {
    let mut best = (f32::NEG_INFINITY, 0);
    for c in 0..nlist {
        let s = dot_f32(v, &centroids[c * d..(c + 1) * d]);
        if s > best.0 {
            best = (s, c);
        }
    }
    best.1
}

fn quantize_rows(rows: &[f32], d: usize) -> (Vec<i8>, Vec<f32>) {
    let mut codes = Vec::with_capacity(rows.len());
    let mut scales = Vec::with_capacity(rows.len() / d.max(1));
    for r in rows.chunks_exact(d) {
        let (q, s) = quantize(r);
        codes.extend_from_slice(&q);
        scales.push(s);
    }
    (codes, scales)
}

/// For each row in `which` (indices into the int8 `data`), the centroid with the largest dot
/// product, on every core.
fn assign_parallel(cq: &[i8], cs: &[f32], nlist: usize, d: usize, data: &[i8], which: &[u32], out: &mut [u32]) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let per = out.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        for (chunk, rows) in out.chunks_mut(per).zip(which.chunks(per)) {
            s.spawn(move || {
                for (o, &r) in chunk.iter_mut().zip(rows) {
                    let r = r as usize;
                    let v = &data[r * d..(r + 1) * d];
                    let mut best = (f32::NEG_INFINITY, 0u32);
                    for c in 0..nlist {
                        let sc = dot_i8(v, &cq[c * d..(c + 1) * d]) as f32 * cs[c];
                        if sc > best.0 {
                            best = (sc, c as u32);
                        }
                    }
                    *o = if best.0.is_finite() { best.1 } else { 0 };
                }
            });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(rng: &mut Rng, d: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..d).map(|_| (rng.next_u64() % 2001) as f32 / 1000.0 - 1.0).collect();
        crate::embed::normalize(&mut v);
        v
    }

    #[test]
    fn exact_search_finds_itself_and_orders_by_score() {
        let mut rng = Rng::seed_from_u64(1);
        let mut idx = VectorIndex::new(32);
        let vs: Vec<Vec<f32>> = (0..200).map(|_| unit(&mut rng, 32)).collect();
        for (i, v) in vs.iter().enumerate() {
            idx.add(i as i64 * 10, v);
        }
        let hits = idx.search(&vs[17], 5);
        assert_eq!(hits[0].key, 170);
        assert!((hits[0].score - 1.0).abs() < 0.02, "{hits:?}");
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(idx.remove(170));
        assert!(!idx.remove(170));
        assert_ne!(idx.search(&vs[17], 1)[0].key, 170);
        assert_eq!(idx.len(), 199);
        let filtered = idx.search_filtered(&vs[3], 3, |k| k != 30);
        assert!(filtered.iter().all(|h| h.key != 30));
    }

    #[test]
    fn ivf_recall_on_clustered_data_and_removal() {
        // 40 clusters of noisy copies: the structure real caption embeddings have.
        let d = 64;
        let mut rng = Rng::seed_from_u64(7);
        let centers: Vec<Vec<f32>> = (0..40).map(|_| unit(&mut rng, d)).collect();
        let mut idx = VectorIndex::new(d);
        idx.train_at = 2000;
        let mut all = Vec::new();
        for i in 0..6000 {
            let c = &centers[i % 40];
            let noise = unit(&mut rng, d);
            let mut v: Vec<f32> = c.iter().zip(&noise).map(|(a, b)| a + 0.4 * b).collect();
            crate::embed::normalize(&mut v);
            idx.add(i as i64, &v);
            all.push(v);
            if i == 2500 {
                assert!(idx.maintain(), "trains once past train_at");
                assert!(idx.lists() >= 16);
                assert!(!idx.maintain(), "not again until it has grown fourfold");
            }
        }
        let mut found = 0;
        let mut total = 0;
        for q in all.iter().step_by(97) {
            let exact: Vec<i64> = idx.search_exact(q, 10).iter().map(|h| h.key).collect();
            let approx: Vec<i64> = idx.search(q, 10).iter().map(|h| h.key).collect();
            found += approx.iter().filter(|k| exact.contains(k)).count();
            total += 10;
        }
        let recall = found as f64 / total as f64;
        assert!(recall >= 0.9, "recall@10 {recall}");
        idx.remove(5);
        assert!(idx.search(&all[5], 10).iter().all(|h| h.key != 5));
    }

    #[test]
    fn quantization_keeps_cosine() {
        let mut rng = Rng::seed_from_u64(3);
        let a = unit(&mut rng, 384);
        let b = unit(&mut rng, 384);
        let exact = dot_f32(&a, &b);
        let (qa, sa) = quantize(&a);
        let (qb, sb) = quantize(&b);
        let approx = dot_i8(&qa, &qb) as f32 * sa * sb;
        assert!((exact - approx).abs() < 0.01, "{exact} vs {approx}");
    }
}
