//! Tracking quality against ground truth: CLEAR MOT (MOTA, ID switches, false positives,
//! misses) and IDF1 (identity F1 over the whole sequence), plus detection precision/recall,
//! all at an IoU threshold (0.5 by convention).

use crate::assign::assign;
use crate::detect::BBox;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Accumulates frames; [`MotAccumulator::summary`] gives the figures.
#[derive(Debug, Clone, Default)]
pub struct MotAccumulator {
    pub iou: f32,
    gt: u64,
    hyp: u64,
    matches: u64,
    fp: u64,
    misses: u64,
    switches: u64,
    frames: u64,
    /// The hypothesis each ground-truth object was last matched to.
    last: BTreeMap<String, u64>,
    /// Frames in which (gt, hyp) were matched (for IDF1).
    pairs: BTreeMap<(String, u64), u64>,
    gt_frames: BTreeMap<String, u64>,
    hyp_frames: BTreeMap<u64, u64>,
    det_tp: u64,
    det_fp: u64,
    det_fn: u64,
    iou_sum: f64,
}

/// The figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MotSummary {
    pub frames: u64,
    pub ground_truth: u64,
    pub hypotheses: u64,
    pub matches: u64,
    pub false_positives: u64,
    pub misses: u64,
    pub id_switches: u64,
    pub mota: f64,
    /// Mean IoU of matched pairs.
    pub motp: f64,
    pub idf1: f64,
    pub detection_precision: f64,
    pub detection_recall: f64,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// IoU matching with the CLEAR MOT rule: pairs matched in the previous frame stay matched
/// while their IoU holds, the rest by optimal assignment.
fn match_frame(
    gt: &[(String, BBox)],
    hyp: &[(u64, BBox)],
    min_iou: f32,
    last: Option<&BTreeMap<String, u64>>,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut gt_used = vec![false; gt.len()];
    let mut hyp_used = vec![false; hyp.len()];
    if let Some(last) = last {
        for (i, (g, gb)) in gt.iter().enumerate() {
            if let Some(h) = last.get(g)
                && let Some(j) = hyp.iter().position(|(id, _)| id == h)
                && !hyp_used[j]
                && gb.iou(&hyp[j].1) >= min_iou
            {
                out.push((i, j));
                gt_used[i] = true;
                hyp_used[j] = true;
            }
        }
    }
    let gi: Vec<usize> = (0..gt.len()).filter(|&i| !gt_used[i]).collect();
    let hi: Vec<usize> = (0..hyp.len()).filter(|&j| !hyp_used[j]).collect();
    let cost: Vec<f64> =
        gi.iter().flat_map(|&i| hi.iter().map(move |&j| 1.0 - f64::from(gt[i].1.iou(&hyp[j].1)))).collect();
    for (a, b) in assign(&cost, gi.len(), hi.len(), 1.0 - f64::from(min_iou)) {
        out.push((gi[a], hi[b]));
    }
    out
}

impl MotAccumulator {
    pub fn new(iou: f32) -> Self {
        Self { iou, ..Default::default() }
    }

    /// One frame: ground-truth objects, the tracker's (id, box), and the raw detections.
    pub fn frame(&mut self, gt: &[(String, BBox)], hyp: &[(u64, BBox)], detections: &[BBox]) {
        self.frames += 1;
        self.gt += gt.len() as u64;
        self.hyp += hyp.len() as u64;
        let m = match_frame(gt, hyp, self.iou, Some(&self.last));
        self.matches += m.len() as u64;
        self.fp += (hyp.len() - m.len()) as u64;
        self.misses += (gt.len() - m.len()) as u64;
        for &(i, j) in &m {
            let (g, h) = (&gt[i].0, hyp[j].0);
            if self.last.get(g).is_some_and(|prev| *prev != h) {
                self.switches += 1;
            }
            self.last.insert(g.clone(), h);
            *self.pairs.entry((g.clone(), h)).or_default() += 1;
            self.iou_sum += f64::from(gt[i].1.iou(&hyp[j].1));
        }
        for (g, _) in gt {
            *self.gt_frames.entry(g.clone()).or_default() += 1;
        }
        for (h, _) in hyp {
            *self.hyp_frames.entry(*h).or_default() += 1;
        }
        let dets: Vec<(u64, BBox)> = detections.iter().enumerate().map(|(i, b)| (i as u64, *b)).collect();
        let dm = match_frame(gt, &dets, self.iou, None);
        self.det_tp += dm.len() as u64;
        self.det_fp += (dets.len() - dm.len()) as u64;
        self.det_fn += (gt.len() - dm.len()) as u64;
    }

    pub fn summary(&self) -> MotSummary {
        // IDF1: the one-to-one gt <-> track mapping maximising co-matched frames.
        let gts: Vec<&String> = self.gt_frames.keys().collect();
        let hyps: Vec<u64> = self.hyp_frames.keys().copied().collect();
        let max = self.pairs.values().copied().max().unwrap_or(0) as f64;
        let cost: Vec<f64> = gts
            .iter()
            .flat_map(|g| {
                hyps.iter().map(move |h| max - self.pairs.get(&((*g).clone(), *h)).copied().unwrap_or(0) as f64)
            })
            .collect();
        let idtp: f64 = assign(&cost, gts.len(), hyps.len(), f64::INFINITY)
            .into_iter()
            .map(|(i, j)| self.pairs.get(&(gts[i].clone(), hyps[j])).copied().unwrap_or(0) as f64)
            .sum();
        let (gt, hyp) = (self.gt as f64, self.hyp as f64);
        MotSummary {
            frames: self.frames,
            ground_truth: self.gt,
            hypotheses: self.hyp,
            matches: self.matches,
            false_positives: self.fp,
            misses: self.misses,
            id_switches: self.switches,
            mota: if gt > 0.0 { 1.0 - (self.fp + self.misses + self.switches) as f64 / gt } else { 0.0 },
            motp: ratio(self.iou_sum, self.matches as f64),
            idf1: ratio(2.0 * idtp, gt + hyp),
            detection_precision: ratio(self.det_tp as f64, (self.det_tp + self.det_fp) as f64),
            detection_recall: ratio(self.det_tp as f64, (self.det_tp + self.det_fn) as f64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x: f32) -> BBox {
        BBox::new(x, 0.0, x + 10.0, 10.0)
    }

    #[test]
    fn perfect_tracking_scores_one() {
        let mut m = MotAccumulator::new(0.5);
        for f in 0..10 {
            let x = f as f32;
            m.frame(
                &[("a".into(), b(x)), ("b".into(), b(50.0 + x))],
                &[(1, b(x)), (2, b(50.0 + x))],
                &[b(x), b(50.0 + x)],
            );
        }
        let s = m.summary();
        assert_eq!((s.mota, s.idf1, s.id_switches), (1.0, 1.0, 0));
        assert_eq!((s.detection_precision, s.detection_recall), (1.0, 1.0));
    }

    #[test]
    fn a_switch_a_miss_and_a_false_positive_are_counted() {
        let mut m = MotAccumulator::new(0.5);
        // 4 frames of one object: tracked as 1, 1, then missed, then as 7; plus a false track.
        m.frame(&[("a".into(), b(0.0))], &[(1, b(0.0))], &[b(0.0)]);
        m.frame(&[("a".into(), b(0.0))], &[(1, b(0.0)), (9, b(80.0))], &[b(0.0), b(80.0)]);
        m.frame(&[("a".into(), b(0.0))], &[], &[]);
        m.frame(&[("a".into(), b(0.0))], &[(7, b(1.0))], &[b(1.0)]);
        let s = m.summary();
        assert_eq!((s.matches, s.misses, s.false_positives, s.id_switches), (3, 1, 1, 1));
        assert!((s.mota - (1.0 - 3.0 / 4.0)).abs() < 1e-12);
        // IDF1: best mapping a->1 for 2 frames; 2*2 / (4 gt + 4 hyp) = 0.5.
        assert!((s.idf1 - 0.5).abs() < 1e-12);
        assert!((s.detection_recall - 0.75).abs() < 1e-12);
        assert!((s.detection_precision - 0.75).abs() < 1e-12);
    }
}
