//! Is this person attending to the robot? A score in [0, 1] per tracked person from head yaw
//! (face landmarks), distance, dwell time and approach, smoothed, with hysteresis so the
//! decision does not flicker; the changes are the "started/stopped attending" events.

use crate::SimTime;
use crate::detect::Landmarks;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttentionConfig {
    /// The smoothed score must reach this to start attending...
    pub on: f32,
    /// ...and fall to this to stop.
    pub off: f32,
    /// Head yaw (degrees) at which the face term reaches zero.
    pub max_yaw_deg: f64,
    /// Nose offset from the eyes' midpoint, in eye distances, per unit of tan(yaw); fitted to
    /// CenterFace landmarks (see `yaw_from_landmarks`).
    pub yaw_gain: f64,
    /// Full distance term up to here (metres)...
    pub near_m: f64,
    /// ...falling linearly to `far_weight` here.
    pub far_m: f64,
    pub far_weight: f32,
    /// Time constant (seconds) of the dwell term: facing the robot for longer counts more.
    pub dwell_s: f64,
    /// Weight of the score's exponential moving average for a new frame.
    pub smoothing: f32,
}

impl Default for AttentionConfig {
    fn default() -> Self {
        Self {
            on: 0.6,
            off: 0.4,
            max_yaw_deg: 60.0,
            yaw_gain: 0.4,
            near_m: 2.5,
            far_m: 7.0,
            far_weight: 0.5,
            dwell_s: 0.6,
            smoothing: 0.5,
        }
    }
}

impl AttentionConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.off) || !(0.0..=1.0).contains(&self.on) || self.off > self.on {
            return Err(format!("attention: need 0 <= off ({}) <= on ({}) <= 1", self.off, self.on));
        }
        if self.yaw_gain <= 0.0 || self.max_yaw_deg <= 0.0 || self.far_m <= self.near_m {
            return Err("attention: yaw_gain and max_yaw_deg must be positive, far_m beyond near_m".into());
        }
        if !(0.0..=1.0).contains(&self.smoothing) || self.smoothing == 0.0 {
            return Err(format!("attention: smoothing {} not in (0, 1]", self.smoothing));
        }
        Ok(())
    }

    /// Head yaw (radians, positive = turned towards the image's right) from the five
    /// landmarks: how far the nose sits from the eyes' midpoint, in eye distances.
    pub fn yaw_from_landmarks(&self, lm: &Landmarks) -> Option<f64> {
        let (le, re, nose) = (lm[0], lm[1], lm[2]);
        let eye_dist = f64::from(re[0] - le[0]).hypot(f64::from(re[1] - le[1]));
        if eye_dist < 1.0 {
            return None;
        }
        let mid = (f64::from(le[0] + re[0]) / 2.0, f64::from(le[1] + re[1]) / 2.0);
        // Component of (nose - mid) along the eye line.
        let (ex, ey) = (f64::from(re[0] - le[0]) / eye_dist, f64::from(re[1] - le[1]) / eye_dist);
        let r = ((f64::from(nose[0]) - mid.0) * ex + (f64::from(nose[1]) - mid.1) * ey) / eye_dist;
        Some((r / self.yaw_gain).atan())
    }
}

/// One person's attention over time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttentionState {
    pub score: f32,
    pub attending: bool,
    /// Since when the face has been turned to the robot (within `max_yaw_deg`).
    facing_since: Option<SimTime>,
    last: Option<(SimTime, f64)>,
}

/// What one frame did to a person's attention.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttentionUpdate {
    pub score: f32,
    pub attending: bool,
    /// Some(true) when attention started this frame, Some(false) when it stopped.
    pub changed: Option<bool>,
}

impl AttentionState {
    /// Folds in one frame: `yaw` from the landmarks (None when no face was seen this frame),
    /// `range` in metres.
    pub fn update(&mut self, cfg: &AttentionConfig, now: SimTime, yaw: Option<f64>, range: f64) -> AttentionUpdate {
        let max_yaw = cfg.max_yaw_deg.to_radians();
        let face = yaw.map_or(0.0, |y| (1.0 - y.abs() / max_yaw).clamp(0.0, 1.0));
        if face > 0.0 {
            self.facing_since.get_or_insert(now);
        } else {
            self.facing_since = None;
        }
        let dwell =
            self.facing_since.map_or(0.0, |t0| 1.0 - (-now.saturating_sub(t0).as_secs_f64() / cfg.dwell_s).exp());
        let t = ((range - cfg.near_m) / (cfg.far_m - cfg.near_m)).clamp(0.0, 1.0);
        let distance = 1.0 - t * (1.0 - f64::from(cfg.far_weight));
        let approach = match self.last {
            Some((t0, r0)) if now > t0 => ((r0 - range) / now.saturating_sub(t0).as_secs_f64() / 0.5).clamp(0.0, 1.0),
            _ => 0.0,
        };
        self.last = Some((now, range));
        let raw = (face.sqrt() * (0.55 + 0.45 * dwell) * distance + 0.15 * approach * face).clamp(0.0, 1.0) as f32;
        self.score += cfg.smoothing * (raw - self.score);
        let before = self.attending;
        if !self.attending && self.score >= cfg.on {
            self.attending = true;
        } else if self.attending && self.score <= cfg.off {
            self.attending = false;
        }
        AttentionUpdate {
            score: self.score,
            attending: self.attending,
            changed: (before != self.attending).then_some(self.attending),
        }
    }

    /// The score as memory and the tree's `is_attending` (threshold 0.5) should see it: on the
    /// side of 0.5 that the hysteresis decided.
    pub fn reported(&self) -> f32 {
        if self.attending { self.score.max(0.5) } else { self.score.min(0.49) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontal_near_face_starts_attending_and_turning_away_stops_it_with_hysteresis() {
        let cfg = AttentionConfig::default();
        let mut s = AttentionState::default();
        let mut started = None;
        for i in 0..20 {
            let u = s.update(&cfg, SimTime::from_millis(i * 100), Some(0.05), 1.5);
            if u.changed == Some(true) {
                started = Some(i);
            }
        }
        let started = started.expect("attention starts");
        assert!((2..10).contains(&started), "started at frame {started}");
        assert!(s.attending && s.reported() >= 0.5);
        // A brief glance away (one frame without a face) does not stop it.
        let u = s.update(&cfg, SimTime::from_millis(2000), None, 1.5);
        assert!(u.attending && u.changed.is_none());
        // Turning away for good does.
        let mut stopped = false;
        for i in 21..30 {
            stopped |= s.update(&cfg, SimTime::from_millis(i * 100), Some(1.4), 1.5).changed == Some(false);
        }
        assert!(stopped && !s.attending && s.reported() < 0.5);
    }

    #[test]
    fn far_or_profile_faces_score_lower() {
        let cfg = AttentionConfig::default();
        let run = |yaw: f64, range: f64| {
            let mut s = AttentionState::default();
            (0..30).map(|i| s.update(&cfg, SimTime::from_millis(i * 100), Some(yaw), range).score).last().unwrap()
        };
        assert!(run(0.0, 1.5) > run(0.0, 6.5));
        assert!(run(0.0, 1.5) > run(0.7, 1.5));
        assert!(run(1.2, 1.5) < 0.1);
    }

    #[test]
    fn yaw_from_landmarks_has_the_right_sign() {
        let cfg = AttentionConfig::default();
        let mut lm = [[40.0, 50.0], [60.0, 50.0], [50.0, 60.0], [42.0, 70.0], [58.0, 70.0]];
        assert!(cfg.yaw_from_landmarks(&lm).unwrap().abs() < 1e-9);
        lm[2][0] = 55.0;
        assert!(cfg.yaw_from_landmarks(&lm).unwrap() > 0.3);
        assert!(cfg.validate().is_ok());
        assert!(AttentionConfig { on: 0.3, off: 0.5, ..Default::default() }.validate().is_err());
    }
}
