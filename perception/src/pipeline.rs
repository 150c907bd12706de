//! Frame -> entities: detector, tracker, camera geometry, attention and re-identification in
//! one place, shared by the simulator's camera, `arbor perceive` and the ROS 2 node.
//!
//! A frame the detector fails on is dropped and counted; the tracker simply sees no
//! detections for it (tracks coast on their Kalman prediction).

use crate::appearance::{Appearance, Gallery};
use crate::attention::{AttentionConfig, AttentionState};
use crate::camera::CameraModel;
use crate::detect::{BBox, DetectError, Detection, Detector, DetectorConfig};
use crate::frame::Frame;
use crate::track::{TrackState, Tracker, TrackerConfig};
use crate::{EntityId, EntityKind, Observation, Pose2, SimTime};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The pipeline's settings (the `perception:` section of a robot config, or defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    #[serde(default = "DetectorConfig::centerface")]
    pub detector: DetectorConfig,
    #[serde(default)]
    pub tracker: TrackerConfig,
    #[serde(default)]
    pub attention: AttentionConfig,
    /// Real height of a face box (metres), for range from size.
    #[serde(default = "default_face_height")]
    pub face_height_m: f64,
    /// Relative spread of real face sizes (for the range uncertainty).
    #[serde(default = "default_face_spread")]
    pub face_size_spread: f64,
    /// Frames a confirmed track still counts as in view after its last detection.
    #[serde(default = "default_coast")]
    pub coast_frames: u32,
    /// Frames of re-identification votes before a track takes an enrolled name.
    #[serde(default = "default_votes")]
    pub min_votes: u32,
}

fn default_face_height() -> f64 {
    // CenterFace's box spans brow to chin: ~0.2 m on adults.
    0.20
}
fn default_face_spread() -> f64 {
    0.12
}
fn default_coast() -> u32 {
    3
}
fn default_votes() -> u32 {
    2
}

impl PipelineConfig {
    /// Checks the values (field named in the error), before any frame is processed.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.face_height_m.is_finite() && self.face_height_m > 0.05 && self.face_height_m <= 0.5) {
            return Err(format!("face_height_m: must be in (0.05, 0.5] metres, got {}", self.face_height_m));
        }
        if !(self.face_size_spread.is_finite() && (0.0..1.0).contains(&self.face_size_spread)) {
            return Err(format!("face_size_spread: must be in [0, 1), got {}", self.face_size_spread));
        }
        if self.min_votes == 0 {
            return Err("min_votes: must be at least 1".into());
        }
        self.attention.validate()
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            detector: DetectorConfig::centerface(),
            tracker: TrackerConfig::default(),
            attention: AttentionConfig::default(),
            face_height_m: default_face_height(),
            face_size_spread: default_face_spread(),
            coast_frames: default_coast(),
            min_votes: default_votes(),
        }
    }
}

/// One tracked entity in one frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedEntity {
    pub track_id: u64,
    pub entity: EntityId,
    pub label: String,
    pub bbox: BBox,
    /// Whether a detection was matched this frame (false while coasting).
    pub detected: bool,
    pub observation: Observation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_yaw: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attending: Option<bool>,
}

/// What one frame produced.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameOutput {
    pub stamp: SimTime,
    pub detections: Vec<Detection>,
    pub entities: Vec<TrackedEntity>,
    /// (entity, started) for each person whose attention changed this frame.
    pub attention_changes: Vec<(EntityId, bool)>,
}

impl FrameOutput {
    pub fn observations(&self) -> Vec<Observation> {
        self.entities.iter().map(|e| e.observation.clone()).collect()
    }
}

#[derive(Debug, Default, Clone)]
struct TrackInfo {
    attention: AttentionState,
    votes: BTreeMap<String, u32>,
    name: Option<String>,
    was_attending: bool,
}

/// Wall time of the stages of one frame.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    pub detection: std::time::Duration,
    pub tracking: std::time::Duration,
}

/// Detector + tracker + geometry + attention + re-identification.
pub struct Pipeline {
    timings: StageTimings,
    cfg: PipelineConfig,
    detector: Box<dyn Detector>,
    tracker: Tracker,
    camera: CameraModel,
    gallery: Gallery,
    info: BTreeMap<u64, TrackInfo>,
    frames: u64,
    dropped: u64,
    /// The camera's heading at the previous frame, for motion compensation.
    last_yaw: Option<f64>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("detector", &self.detector.name()).field("frames", &self.frames).finish()
    }
}

impl Pipeline {
    /// Builds the configured detector (loads the model).
    pub fn new(cfg: PipelineConfig, camera: CameraModel) -> Result<Self, DetectError> {
        cfg.validate().map_err(DetectError::Config)?;
        let detector = cfg.detector.build()?;
        Ok(Self::with_detector(cfg, camera, detector))
    }

    /// With a detector built elsewhere.
    pub fn with_detector(cfg: PipelineConfig, camera: CameraModel, detector: Box<dyn Detector>) -> Self {
        Self {
            timings: StageTimings::default(),
            tracker: Tracker::new(cfg.tracker.clone()),
            cfg,
            detector,
            camera,
            gallery: Gallery::new(),
            info: BTreeMap::new(),
            frames: 0,
            dropped: 0,
            last_yaw: None,
        }
    }

    pub fn camera(&self) -> &CameraModel {
        &self.camera
    }

    pub fn detector_mut(&mut self) -> &mut dyn Detector {
        self.detector.as_mut()
    }

    /// People the pipeline should recognise by name.
    pub fn set_gallery(&mut self, gallery: Gallery) {
        self.gallery = gallery;
    }

    /// Frames processed and frames dropped because detection failed.
    pub fn counts(&self) -> (u64, u64) {
        (self.frames, self.dropped)
    }

    /// Enrolls a person from a frame showing them: the most confident face in it.
    pub fn enroll(&mut self, name: &str, frame: &Frame) -> Result<bool, DetectError> {
        let dets = self.detector.detect(&frame.image)?;
        let Some(best) = dets.iter().max_by(|a, b| a.score.total_cmp(&b.score)) else {
            return Ok(false);
        };
        match Appearance::of(&frame.image, &best.bbox) {
            Some(a) => {
                self.gallery.enroll(name, a);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Camera motion compensation: when the robot turned since the last frame, every track's
    /// predicted box moves by the rotation (a turn of 9 degrees per frame shifts a face by ~50
    /// pixels, more than its width: without this, association by IoU fails while turning).
    fn compensate(&mut self, robot: Pose2) {
        let yaw = self.camera.pose(robot).yaw;
        if let Some(prev) = self.last_yaw.replace(yaw) {
            let d = crate::geometry::normalize_angle(yaw - prev);
            if d.abs() > 1e-6 {
                let (fx, cx) = (self.camera.fx, self.camera.cx);
                self.tracker.warp(|u, v| {
                    let b = ((cx - u) / fx).atan() - d;
                    if b.abs() < 1.5 { (cx - fx * b.tan(), v) } else { (u, v) }
                });
            }
        }
    }

    /// Processes one frame taken with the robot at `robot`. A detector failure drops the
    /// frame (returned as the error, counted) and the tracks coast.
    pub fn process(&mut self, frame: &Frame, robot: Pose2) -> Result<FrameOutput, DetectError> {
        self.frames += 1;
        let t0 = std::time::Instant::now();
        let detected = self.detector.detect(&frame.image);
        self.timings.detection = t0.elapsed();
        let detections = match detected {
            Ok(d) => d,
            Err(e) => {
                self.dropped += 1;
                self.compensate(robot);
                self.tracker.update(&[]);
                return Err(e);
            }
        };
        let t1 = std::time::Instant::now();
        let out = self.track(frame, robot, detections);
        self.timings.tracking = t1.elapsed();
        Ok(out)
    }

    /// Wall time of the last frame's detection and tracking (for metrics only: never recorded).
    pub fn timings(&self) -> StageTimings {
        self.timings
    }

    /// The tracking half of [`Pipeline::process`], for detections made elsewhere.
    pub fn track(&mut self, frame: &Frame, robot: Pose2, detections: Vec<Detection>) -> FrameOutput {
        self.compensate(robot);
        self.tracker.update(&detections);
        let now = frame.stamp;
        let alive: std::collections::BTreeSet<u64> = self.tracker.tracks().iter().map(|t| t.id).collect();
        self.info.retain(|id, _| alive.contains(id));
        let mut out = FrameOutput { stamp: now, detections, ..Default::default() };
        let tracks: Vec<_> = self
            .tracker
            .tracks()
            .iter()
            .filter(|t| match t.state {
                TrackState::Confirmed => true,
                TrackState::Lost => t.frames_since_update <= self.cfg.coast_frames,
                _ => false,
            })
            .cloned()
            .collect();
        for t in &tracks {
            let info = self.info.entry(t.id).or_default();
            let is_face = t.detection.landmarks.is_some() || t.detection.label == "face";
            let bbox = if t.matched { t.detection.bbox } else { t.bbox() };
            let located = if is_face {
                self.camera.locate_by_size(robot, &bbox, self.cfg.face_height_m, self.cfg.face_size_spread)
            } else {
                self.camera.locate_on_ground(robot, &bbox)
            };
            let Some(loc) = located else { continue };
            // Re-identification votes from this frame's pixels.
            if t.matched
                && is_face
                && !self.gallery.is_empty()
                && let Some(a) = Appearance::of(&frame.image, &bbox)
                && let Some((name, _)) = self.gallery.identify(&a)
            {
                *info.votes.entry(name.to_string()).or_default() += 1;
            }
            let total: u32 = info.votes.values().sum();
            info.name = info
                .votes
                .iter()
                .max_by_key(|(_, v)| **v)
                .filter(|(_, v)| **v >= self.cfg.min_votes && f64::from(**v) >= 0.6 * f64::from(total))
                .map(|(n, _)| n.clone());
            // With people to recognise, a new track waits a few frames for its name rather
            // than appearing as person_N and being renamed a moment later.
            if !self.gallery.is_empty() && info.name.is_none() && t.hits < self.cfg.min_votes + 2 {
                continue;
            }
            let yaw = if t.matched {
                t.detection.landmarks.and_then(|lm| self.cfg.attention.yaw_from_landmarks(&lm))
            } else {
                None
            };
            let (attention, attending) = if is_face {
                info.attention.update(&self.cfg.attention, now, yaw, loc.range);
                (Some(info.attention.reported()), Some(info.attention.attending))
            } else {
                (None, None)
            };
            out.entities.push(TrackedEntity {
                track_id: t.id,
                entity: EntityId::new(String::new()),
                label: if is_face { "person".into() } else { t.detection.label.clone() },
                bbox,
                detected: t.matched,
                observation: Observation {
                    stamp: now,
                    entity: EntityId::new(String::new()),
                    kind: if is_face { EntityKind::Person } else { EntityKind::Object },
                    label: if is_face { "person".into() } else { t.detection.label.clone() },
                    position: loc.position,
                    range: loc.range,
                    bearing: loc.bearing,
                    confidence: t.detection.score,
                    attention,
                    sigma: Some(loc.sigma as f32),
                },
                head_yaw: yaw,
                attending,
            });
        }
        // Names: one track per enrolled name (the one with the most votes); others by track id.
        let mut owner: BTreeMap<String, (u32, u64)> = BTreeMap::new();
        for e in &out.entities {
            if let Some(info) = self.info.get(&e.track_id)
                && let Some(n) = &info.name
            {
                let v = info.votes.get(n).copied().unwrap_or(0);
                let cur = owner.entry(n.clone()).or_insert((v, e.track_id));
                if v > cur.0 || (v == cur.0 && e.track_id < cur.1) {
                    *cur = (v, e.track_id);
                }
            }
        }
        for e in &mut out.entities {
            let named = self
                .info
                .get(&e.track_id)
                .and_then(|i| i.name.clone())
                .filter(|n| owner.get(n).is_some_and(|o| o.1 == e.track_id));
            let id = named.unwrap_or_else(|| format!("{}_{}", e.label, e.track_id));
            e.entity = EntityId::new(id.clone());
            e.observation.entity = EntityId::new(id);
            if let (Some(info), Some(att)) = (self.info.get_mut(&e.track_id), e.attending)
                && att != info.was_attending
            {
                info.was_attending = att;
                out.attention_changes.push((e.entity.clone(), att));
            }
        }
        out
    }
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn bad_values_are_refused_naming_the_field() {
        assert!(PipelineConfig::default().validate().is_ok());
        let c = PipelineConfig { face_height_m: -1.0, ..PipelineConfig::default() };
        assert!(c.validate().unwrap_err().starts_with("face_height_m:"));
        let c = PipelineConfig { face_size_spread: 1.5, ..PipelineConfig::default() };
        assert!(c.validate().unwrap_err().starts_with("face_size_spread:"));
    }
}
