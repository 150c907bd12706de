//! Multi-object tracking, ByteTrack-style: a constant-velocity Kalman filter per track over
//! (cx, cy, aspect, height); association in two stages (confident detections first, then the
//! low-confidence ones for tracks still unmatched); IoU cost and optimal assignment on the
//! connected groups of overlapping boxes; a tentative -> confirmed -> lost -> removed
//! lifecycle, so ids survive short occlusions and a detector miss or two.

use crate::assign::assign;
use crate::detect::{BBox, Detection};
use nalgebra::{SMatrix, SVector};
use serde::{Deserialize, Serialize};

type Vec8 = SVector<f64, 8>;
type Mat8 = SMatrix<f64, 8, 8>;
type Vec4 = SVector<f64, 4>;
type Mat4 = SMatrix<f64, 4, 4>;

const STD_POSITION: f64 = 1.0 / 20.0;
const STD_VELOCITY: f64 = 1.0 / 160.0;

/// The constant-velocity Kalman filter of SORT/DeepSORT/ByteTrack over
/// x = (cx, cy, a = w / h, h, and their velocities), one step per frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Kalman {
    pub mean: Vec8,
    pub cov: Mat8,
}

fn measure(b: &BBox) -> Vec4 {
    let (cx, cy) = b.center();
    let h = f64::from(b.height()).max(1e-3);
    Vec4::new(f64::from(cx), f64::from(cy), f64::from(b.width()) / h, h)
}

impl Kalman {
    pub fn new(b: &BBox) -> Self {
        let z = measure(b);
        let h = z[3];
        let mut mean = Vec8::zeros();
        mean.fixed_rows_mut::<4>(0).copy_from(&z);
        let std = [
            2.0 * STD_POSITION * h,
            2.0 * STD_POSITION * h,
            1e-2,
            2.0 * STD_POSITION * h,
            10.0 * STD_VELOCITY * h,
            10.0 * STD_VELOCITY * h,
            1e-5,
            10.0 * STD_VELOCITY * h,
        ];
        let cov = Mat8::from_diagonal(&Vec8::from_iterator(std.iter().map(|s| s * s)));
        Self { mean, cov }
    }

    pub fn predict(&mut self) {
        let h = self.mean[3];
        let std = [
            STD_POSITION * h,
            STD_POSITION * h,
            1e-2,
            STD_POSITION * h,
            STD_VELOCITY * h,
            STD_VELOCITY * h,
            1e-5,
            STD_VELOCITY * h,
        ];
        // x' = F x and P' = F P F^T + Q with F = [[I, I], [0, I]], done blockwise:
        // with P = [[A, B], [C, D]], F P F^T = [[A + B + C + D, B + D], [C + D, D]].
        for i in 0..4 {
            self.mean[i] += self.mean[i + 4];
        }
        let p = self.cov;
        for r in 0..4 {
            for c in 0..4 {
                let (a, b, cc, d) = (p[(r, c)], p[(r, c + 4)], p[(r + 4, c)], p[(r + 4, c + 4)]);
                self.cov[(r, c)] = a + b + cc + d;
                self.cov[(r, c + 4)] = b + d;
                self.cov[(r + 4, c)] = cc + d;
            }
        }
        for (i, sd) in std.iter().enumerate() {
            self.cov[(i, i)] += sd * sd;
        }
    }

    pub fn update(&mut self, b: &BBox) {
        let z = measure(b);
        let h = self.mean[3];
        let r = Mat4::from_diagonal(&Vec4::new(
            (STD_POSITION * h).powi(2),
            (STD_POSITION * h).powi(2),
            1e-2,
            (STD_POSITION * h).powi(2),
        ));
        // H = [I 0]: H P H^T is P's upper-left block, P H^T its left columns.
        let s: Mat4 = self.cov.fixed_view::<4, 4>(0, 0).into_owned() + r;
        // S is symmetric positive definite and 4x4: nalgebra's closed-form 4x4 inverse is
        // several times faster than a Cholesky solve here.
        let Some(s_inv) = s.try_inverse() else {
            // A degenerate covariance (never seen in practice): restart from the measurement.
            *self = Kalman::new(b);
            return;
        };
        let pht: SMatrix<f64, 8, 4> = self.cov.fixed_view::<8, 4>(0, 0).into_owned();
        let k: SMatrix<f64, 8, 4> = pht * s_inv;
        let innovation = z - self.mean.fixed_rows::<4>(0);
        self.mean += k * innovation;
        // P - K S K^T = P - K (P H^T)^T.
        self.cov -= k * pht.transpose();
    }

    pub fn bbox(&self) -> BBox {
        let (cx, cy, a, h) = (self.mean[0], self.mean[1], self.mean[2], self.mean[3].max(1e-3));
        let w = a * h;
        BBox::new((cx - w / 2.0) as f32, (cy - h / 2.0) as f32, (cx + w / 2.0) as f32, (cy + h / 2.0) as f32)
    }

    /// Image velocity of the box centre, pixels per frame.
    pub fn velocity(&self) -> (f64, f64) {
        (self.mean[4], self.mean[5])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackState {
    /// Seen once; becomes confirmed after `min_hits` consecutive matches, removed on a miss.
    Tentative,
    Confirmed,
    /// Confirmed but unmatched for a while (occluded, missed); kept `max_lost_frames`.
    Lost,
    Removed,
}

/// One track.
#[derive(Debug, Clone)]
pub struct Track {
    pub id: u64,
    pub state: TrackState,
    pub kalman: Kalman,
    /// The last matched detection.
    pub detection: Detection,
    /// Whether a detection was matched in the latest frame.
    pub matched: bool,
    pub hits: u32,
    pub frames_since_update: u32,
    pub first_frame: u64,
}

impl Track {
    pub fn bbox(&self) -> BBox {
        self.kalman.bbox()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerConfig {
    /// Detections at or above this score are "high" (first association, may start tracks).
    pub high_score: f32,
    /// Detections between this and `high_score` are used only in the second association.
    pub low_score: f32,
    /// A new track needs a detection at least this confident.
    pub new_track_score: f32,
    /// Minimum IoU in the first association (confirmed and lost tracks vs high detections).
    pub first_iou: f32,
    /// Minimum IoU in the second association (remaining confirmed tracks vs low detections).
    pub second_iou: f32,
    /// Minimum IoU between a tentative track and a high detection.
    pub tentative_iou: f32,
    /// Consecutive matches that confirm a track.
    pub min_hits: u32,
    /// Frames a lost track is kept before it is removed.
    pub max_lost_frames: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            high_score: 0.5,
            low_score: 0.1,
            new_track_score: 0.6,
            first_iou: 0.2,
            second_iou: 0.5,
            tentative_iou: 0.3,
            min_hits: 2,
            max_lost_frames: 30,
        }
    }
}

/// The tracker. Deterministic: the same detections give the same ids.
#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
    frame: u64,
}

/// Union-find over track and detection indices, to split association into independent groups.
struct Groups {
    parent: Vec<usize>,
}

impl Groups {
    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }
}

/// Optimal IoU assignment between `boxes_a` and `boxes_b` with IoU >= `min_iou`. Candidate
/// pairs come from a sweep over x; each connected group of overlapping boxes is solved on its
/// own (so 1000 well-separated tracks cost about as much as 1000 one-by-one matches).
pub fn match_iou(a: &[BBox], b: &[BBox], min_iou: f32) -> Vec<(usize, usize)> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..b.len()).collect();
    order.sort_by(|&i, &j| b[i].x1.total_cmp(&b[j].x1));
    let max_w = b.iter().map(BBox::width).fold(0.0f32, f32::max);
    let mut edges: Vec<(usize, usize, f32)> = Vec::new();
    for (i, ba) in a.iter().enumerate() {
        // Boxes of b starting after ba ends cannot overlap; nor those ending before it starts.
        let lo = order.partition_point(|&j| b[j].x1 < ba.x1 - max_w);
        for &j in &order[lo..] {
            if b[j].x1 > ba.x2 {
                break;
            }
            let iou = ba.iou(&b[j]);
            if iou >= min_iou && iou > 0.0 {
                edges.push((i, j, iou));
            }
        }
    }
    let na = a.len();
    let mut groups = Groups { parent: (0..na + b.len()).collect() };
    for &(i, j, _) in &edges {
        groups.union(i, na + j);
    }
    // Edges grouped by their component's root (sorting, not a map: no allocation per group).
    let mut keyed: Vec<(usize, (usize, usize, f32))> = edges.into_iter().map(|e| (groups.find(e.0), e)).collect();
    keyed.sort_unstable_by_key(|(r, e)| (*r, e.0, e.1));
    let mut out = Vec::new();
    let mut start = 0;
    while start < keyed.len() {
        let mut end = start + 1;
        while end < keyed.len() && keyed[end].0 == keyed[start].0 {
            end += 1;
        }
        if end == start + 1 {
            out.push((keyed[start].1.0, keyed[start].1.1));
            start = end;
            continue;
        }
        let es: Vec<(usize, usize, f32)> = keyed[start..end].iter().map(|k| k.1).collect();
        start = end;
        let mut ra: Vec<usize> = es.iter().map(|e| e.0).collect();
        let mut rb: Vec<usize> = es.iter().map(|e| e.1).collect();
        ra.sort_unstable();
        ra.dedup();
        rb.sort_unstable();
        rb.dedup();
        let mut cost = vec![f64::INFINITY; ra.len() * rb.len()];
        for &(i, j, iou) in &es {
            let (r, c) = (ra.binary_search(&i).unwrap_or(0), rb.binary_search(&j).unwrap_or(0));
            cost[r * rb.len() + c] = 1.0 - f64::from(iou);
        }
        for (r, c) in assign(&cost, ra.len(), rb.len(), 1.0 - f64::from(min_iou)) {
            out.push((ra[r], rb[c]));
        }
    }
    out.sort_unstable();
    out
}

impl Tracker {
    pub fn new(cfg: TrackerConfig) -> Self {
        Self { cfg, tracks: Vec::new(), next_id: 1, frame: 0 }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Tracks alive after the latest update (tentative, confirmed, lost), by id.
    pub fn tracks(&self) -> &[Track] {
        &self.tracks
    }

    /// Confirmed tracks matched in the latest frame.
    pub fn confirmed(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.state == TrackState::Confirmed)
    }

    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// Moves every track's box centre by `f(cx, cy) -> (cx', cy')`: camera motion
    /// compensation (the robot turned between frames, so everything shifted in the image).
    /// Call before [`Tracker::update`].
    pub fn warp(&mut self, f: impl Fn(f64, f64) -> (f64, f64)) {
        for t in &mut self.tracks {
            let (x, y) = f(t.kalman.mean[0], t.kalman.mean[1]);
            if x.is_finite() && y.is_finite() {
                t.kalman.mean[0] = x;
                t.kalman.mean[1] = y;
            }
        }
    }

    /// Folds one frame's detections in.
    pub fn update(&mut self, detections: &[Detection]) {
        self.frame += 1;
        let cfg = self.cfg.clone();
        for t in &mut self.tracks {
            t.kalman.predict();
            t.matched = false;
        }
        let high: Vec<usize> = (0..detections.len()).filter(|&i| detections[i].score >= cfg.high_score).collect();
        let low: Vec<usize> = (0..detections.len())
            .filter(|&i| detections[i].score < cfg.high_score && detections[i].score >= cfg.low_score)
            .collect();
        let mut det_used = vec![false; detections.len()];

        // 1. Confirmed and lost tracks vs confident detections.
        let pool: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| matches!(self.tracks[i].state, TrackState::Confirmed | TrackState::Lost))
            .collect();
        self.associate(&pool, &high, cfg.first_iou, detections, &mut det_used);
        // 2. Confirmed tracks still unmatched vs low-confidence detections.
        let pool: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| self.tracks[i].state == TrackState::Confirmed && !self.tracks[i].matched)
            .collect();
        self.associate(&pool, &low, cfg.second_iou, detections, &mut det_used);
        // 3. Tentative tracks vs the confident detections left.
        let pool: Vec<usize> =
            (0..self.tracks.len()).filter(|&i| self.tracks[i].state == TrackState::Tentative).collect();
        let rest: Vec<usize> = high.iter().copied().filter(|&i| !det_used[i]).collect();
        self.associate(&pool, &rest, cfg.tentative_iou, detections, &mut det_used);

        for t in &mut self.tracks {
            if t.matched {
                t.frames_since_update = 0;
                t.hits += 1;
                if t.state == TrackState::Lost || (t.state == TrackState::Tentative && t.hits >= cfg.min_hits) {
                    t.state = TrackState::Confirmed;
                }
            } else {
                t.frames_since_update += 1;
                t.state = match t.state {
                    TrackState::Tentative => TrackState::Removed,
                    TrackState::Confirmed => TrackState::Lost,
                    TrackState::Lost if t.frames_since_update > cfg.max_lost_frames => TrackState::Removed,
                    s => s,
                };
            }
        }
        self.tracks.retain(|t| t.state != TrackState::Removed);
        // 4. New tracks from confident detections nobody claimed.
        for (i, d) in detections.iter().enumerate() {
            if det_used[i] || d.score < cfg.new_track_score {
                continue;
            }
            let state =
                if self.frame == 1 || cfg.min_hits <= 1 { TrackState::Confirmed } else { TrackState::Tentative };
            self.tracks.push(Track {
                id: self.next_id,
                state,
                kalman: Kalman::new(&d.bbox),
                detection: d.clone(),
                matched: true,
                hits: 1,
                frames_since_update: 0,
                first_frame: self.frame,
            });
            self.next_id += 1;
        }
    }

    fn associate(
        &mut self,
        pool: &[usize],
        dets: &[usize],
        min_iou: f32,
        detections: &[Detection],
        det_used: &mut [bool],
    ) {
        let dets: Vec<usize> = dets.iter().copied().filter(|&i| !det_used[i]).collect();
        let a: Vec<BBox> = pool.iter().map(|&i| self.tracks[i].bbox()).collect();
        let b: Vec<BBox> = dets.iter().map(|&i| detections[i].bbox).collect();
        for (ti, di) in match_iou(&a, &b, min_iou) {
            let t = &mut self.tracks[pool[ti]];
            let d = &detections[dets[di]];
            t.kalman.update(&d.bbox);
            t.detection.clone_from(d);
            t.matched = true;
            det_used[dets[di]] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox::new(x, y, x + 30.0, y + 36.0),
            score,
            class_id: 0,
            label: "face".into(),
            landmarks: None,
        }
    }

    #[test]
    fn ids_are_stable_through_motion_and_a_short_occlusion() {
        let mut t = Tracker::new(TrackerConfig::default());
        let mut ids_a = Vec::new();
        for f in 0..40 {
            let xa = 10.0 + 4.0 * f as f32;
            let xb = 400.0 - 3.0 * f as f32;
            let mut dets = vec![face(xa, 100.0, 0.9)];
            // b is hidden for frames 15..20 (occlusion), then detected weakly for a while.
            if !(15..20).contains(&f) {
                dets.push(face(xb, 120.0, if f < 25 { 0.3 } else { 0.8 }));
            }
            if f == 0 {
                dets[1].score = 0.9;
            }
            t.update(&dets);
            let a = t.tracks().iter().find(|tr| tr.matched && (tr.detection.bbox.x1 - xa).abs() < 1.0);
            ids_a.push(a.map(|tr| tr.id));
        }
        assert!(ids_a.iter().all(|i| *i == Some(1)), "{ids_a:?}");
        let b: Vec<&Track> = t.tracks().iter().filter(|tr| tr.id != 1).collect();
        assert_eq!(b.len(), 1, "b keeps one track through the occlusion: {:?}", t.tracks());
        assert_eq!(b[0].id, 2);
        assert_eq!(b[0].state, TrackState::Confirmed);
        // The filter learned the velocity: about -3 px/frame.
        assert!((b[0].kalman.velocity().0 + 3.0).abs() < 0.5, "{:?}", b[0].kalman.velocity());
    }

    #[test]
    fn lifecycle_tentative_confirmed_lost_removed() {
        let cfg = TrackerConfig { max_lost_frames: 3, ..Default::default() };
        let mut t = Tracker::new(cfg);
        t.update(&[]);
        t.update(&[face(0.0, 0.0, 0.9)]);
        assert_eq!(t.tracks()[0].state, TrackState::Tentative);
        t.update(&[face(1.0, 0.0, 0.9)]);
        assert_eq!(t.tracks()[0].state, TrackState::Confirmed);
        // A one-off false positive never becomes a track.
        t.update(&[face(1.0, 0.0, 0.9), face(300.0, 300.0, 0.9)]);
        t.update(&[face(2.0, 0.0, 0.9)]);
        assert_eq!(t.tracks().len(), 1);
        for _ in 0..3 {
            t.update(&[]);
            assert_eq!(t.tracks()[0].state, TrackState::Lost);
        }
        t.update(&[]);
        assert!(t.tracks().is_empty());
        // Low-score detections never start tracks.
        t.update(&[face(0.0, 0.0, 0.4)]);
        assert!(t.tracks().is_empty());
    }

    #[test]
    fn grouped_matching_equals_global_matching() {
        let mut rng = crate::Rng::seed_from_u64(3);
        for _ in 0..50 {
            let a: Vec<BBox> = (0..12)
                .map(|_| {
                    let (x, y) = (rng.range(0.0, 200.0) as f32, rng.range(0.0, 100.0) as f32);
                    BBox::new(x, y, x + 30.0, y + 30.0)
                })
                .collect();
            let b: Vec<BBox> = a
                .iter()
                .map(|bb| {
                    let (dx, dy) = (rng.range(-12.0, 12.0) as f32, rng.range(-12.0, 12.0) as f32);
                    BBox::new(bb.x1 + dx, bb.y1 + dy, bb.x2 + dx, bb.y2 + dy)
                })
                .collect();
            let grouped = match_iou(&a, &b, 0.2);
            let cost: Vec<f64> = a
                .iter()
                .flat_map(|x| b.iter().map(move |y| if x.iou(y) >= 0.2 { 1.0 - f64::from(x.iou(y)) } else { 9.0 }))
                .collect();
            let global = assign(&cost, a.len(), b.len(), 0.8);
            let total = |m: &[(usize, usize)]| m.iter().map(|&(i, j)| 1.0 - f64::from(a[i].iou(&b[j]))).sum::<f64>();
            assert_eq!(grouped.len(), global.len());
            assert!((total(&grouped) - total(&global)).abs() < 1e-6);
        }
    }
}
