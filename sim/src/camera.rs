//! `--perception camera`: the simulator renders its camera, and the real pipeline (CenterFace
//! through ONNX Runtime, tracker, geometry, attention, re-identification) turns the pixels
//! into the observations the rest of the loop uses. The renderer's ground truth is used only
//! to score tracking (MOTA, IDF1, ...), never by the robot.
//!
//! People are enrolled the way a robot meets its household: each is rendered alone, facing
//! the camera at 1.5 m, and the pipeline stores what it sees.

use crate::render::{Textures, default_appearance, textures_dir};
use crate::scenario::Scenario;
use crate::world::World;
use arbor_core::{EntityId, EntityKind, Pose2, SimTime};
use arbor_perception::camera::CameraModel;
use arbor_perception::describe::{AsyncDescriber, DescribeError, Describer, Description};
use arbor_perception::detect::{BBox, DetectError};
use arbor_perception::frame::Frame;
use arbor_perception::mot::MotAccumulator;
use arbor_perception::pipeline::{FrameOutput, Pipeline, PipelineConfig};
use image::RgbImage;
use std::sync::Arc;
use std::time::Duration;

/// What the describer is asked about a person coming into view.
pub const DESCRIBE_PROMPT: &str = "Describe this person in one short sentence: clothing, what they are doing.";

/// Where observations come from.
#[derive(Debug, Clone, Default)]
pub enum PerceptionMode {
    /// The simulator's ground truth plus seeded noise (fast; the default).
    #[default]
    GroundTruth,
    /// Rendered frames through the real detector and tracker.
    Camera(Box<CameraSetup>),
}

/// Makes the vision-language describer for a run (a model is loaded per run, on its thread).
#[derive(Clone)]
pub struct DescriberFactory(pub Arc<dyn Fn() -> Result<Box<dyn Describer>, DescribeError> + Send + Sync>);

impl std::fmt::Debug for DescriberFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DescriberFactory")
    }
}

/// Camera perception settings for a run.
#[derive(Debug, Clone, Default)]
pub struct CameraSetup {
    pub pipeline: PipelineConfig,
    /// Describe people as they come into view (asynchronously; `described` events in memory).
    /// Descriptions arrive when the model answers, so a run with a describer records them at
    /// wall-clock-dependent ticks: its `events.jsonl` is not byte-reproducible (its ticks and
    /// observations are; replay reads everything from the recording).
    pub describer: Option<DescriberFactory>,
    /// Least robot time between two description requests, seconds.
    pub describe_interval_s: f64,
}

impl PerceptionMode {
    pub fn name(&self) -> &'static str {
        match self {
            PerceptionMode::GroundTruth => "ground_truth",
            PerceptionMode::Camera(_) => "camera",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CameraError {
    #[error(transparent)]
    Texture(#[from] crate::render::RenderError),
    #[error(transparent)]
    Detector(#[from] DetectError),
    #[error("camera perception: {0}")]
    Config(String),
}

pub use arbor_runtime::PerceptionReport;

/// The rendered camera and the pipeline behind it.
pub struct CameraPerception {
    pipeline: Pipeline,
    textures: Textures,
    camera: CameraModel,
    mot: MotAccumulator,
    enrolled: Vec<String>,
    detector: String,
    dump: Option<std::path::PathBuf>,
    describer: Option<AsyncDescriber>,
    /// The latest frame and what was found in it (for description crops).
    last: Option<(RgbImage, FrameOutput)>,
    descriptions: u64,
    description_errors: u64,
}

impl std::fmt::Debug for CameraPerception {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraPerception").field("detector", &self.detector).finish()
    }
}

impl CameraPerception {
    /// Loads the textures and the detector, and enrolls the scenario's people.
    pub fn new(scenario: &Scenario, setup: &CameraSetup) -> Result<Self, CameraError> {
        let cfg = setup.pipeline.clone();
        let fov = scenario.robot.camera.fov_deg;
        if fov >= 170.0 {
            return Err(CameraError::Config(format!(
                "robot.camera.fov_deg {fov}: a pinhole camera needs less than 170 degrees"
            )));
        }
        let textures = Textures::load(&textures_dir())?;
        let world = World::new(scenario, 0);
        let camera = world.camera_model();
        let mut pipeline = Pipeline::new(cfg, camera.clone())?;
        let detector = pipeline.detector_mut().name();
        let mut enrolled = Vec::new();
        for (i, p) in scenario.people.iter().enumerate() {
            let look = p.appearance.clone().unwrap_or_else(|| default_appearance(i));
            let frame = enrollment_frame(scenario, &p.name, &look, &textures)?;
            if pipeline.enroll(&p.name, &frame)? {
                enrolled.push(p.name.clone());
            }
        }
        Ok(Self {
            pipeline,
            textures,
            camera,
            mot: MotAccumulator::new(0.5),
            enrolled,
            detector,
            dump: std::env::var_os("ARBOR_CAMERA_DUMP").map(std::path::PathBuf::from),
            describer: match &setup.describer {
                Some(f) => Some(AsyncDescriber::spawn(
                    (f.0)().map_err(|e| CameraError::Config(e.to_string()))?,
                    SimTime::from_secs_f64(setup.describe_interval_s.max(0.0)),
                )),
                None => None,
            },
            last: None,
            descriptions: 0,
            description_errors: 0,
        })
    }

    /// Asks the describer about people who just came into view (the first it accepts; it
    /// refuses while busy or within the interval). Never waits.
    pub fn describe_new(&mut self, now: SimTime, appeared: &[EntityId]) {
        let (Some(d), Some((img, out))) = (self.describer.as_mut(), self.last.as_ref()) else { return };
        for id in appeared {
            let Some(e) = out.entities.iter().find(|e| &e.entity == id && e.observation.kind == EntityKind::Person)
            else {
                continue;
            };
            // Head and shoulders: the face box widened and extended down.
            let b = e.bbox;
            let (w, h) = (b.width(), b.height());
            let x0 = (b.x1 - 1.2 * w).max(0.0) as u32;
            let y0 = (b.y1 - 0.4 * h).max(0.0) as u32;
            let x1 = ((b.x2 + 1.2 * w) as u32).min(img.width());
            let y1 = ((b.y2 + 3.0 * h) as u32).min(img.height());
            if x1 <= x0 + 8 || y1 <= y0 + 8 {
                continue;
            }
            let crop = image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image();
            if d.submit(now, Some(id.clone()), crop, DESCRIBE_PROMPT) {
                break;
            }
        }
    }

    /// Descriptions that arrived (errors are counted, not returned).
    pub fn descriptions(&mut self) -> Vec<Description> {
        let got = self.describer.as_mut().map(AsyncDescriber::poll).unwrap_or_default();
        self.keep(got)
    }

    /// At the end of a run: waits up to `timeout` for the description in flight.
    pub fn finish_descriptions(&mut self, timeout: Duration) -> Vec<Description> {
        let got = self.describer.as_mut().map(|d| d.finish(timeout)).unwrap_or_default();
        self.keep(got)
    }

    fn keep(&mut self, got: Vec<Result<Description, DescribeError>>) -> Vec<Description> {
        let mut out = Vec::new();
        for r in got {
            match r {
                Ok(d) => {
                    self.descriptions += 1;
                    out.push(d);
                }
                Err(_) => self.description_errors += 1,
            }
        }
        out
    }

    /// Renders the world's camera now and runs the pipeline. A frame the detector fails on
    /// yields no observations (the error is returned beside them, for the log).
    pub fn observe(&mut self, world: &World, now: SimTime) -> (FrameOutput, Option<DetectError>) {
        let rendered = world.render(&self.camera, &self.textures);
        if let Some(dir) = &self.dump {
            // Debugging aid ($ARBOR_CAMERA_DUMP): every frame as PNG, named by sim time.
            let _ = rendered.image.save(dir.join(format!("{:08}.png", now.micros() / 1000)));
        }
        let frame = Frame { stamp: now, image: rendered.image, source: "sim camera".into() };
        let (out, err) = match self.pipeline.process(&frame, world.robot_pose()) {
            Ok(o) => (o, None),
            Err(e) => (FrameOutput { stamp: now, ..Default::default() }, Some(e)),
        };
        if self.describer.is_some() {
            self.last = Some((frame.image, out.clone()));
        }
        // Ground truth: faces turned to the camera and large enough to be detectable at all.
        let gt: Vec<(String, BBox)> = rendered
            .faces
            .iter()
            .filter(|f| f.facing && f.yaw.abs() < 1.2 && f.bbox.height() >= 12.0)
            .map(|f| (f.name.clone(), f.bbox))
            .collect();
        let hyp: Vec<(u64, BBox)> = out.entities.iter().map(|e| (e.track_id, e.bbox)).collect();
        let dets: Vec<BBox> = out.detections.iter().map(|d| d.bbox).collect();
        self.mot.frame(&gt, &hyp, &dets);
        (out, err)
    }

    /// Wall time of the last frame's detection and tracking.
    pub fn timings(&self) -> arbor_perception::pipeline::StageTimings {
        self.pipeline.timings()
    }

    pub fn report(&self) -> PerceptionReport {
        let (frames, dropped) = self.pipeline.counts();
        PerceptionReport {
            mode: "camera".into(),
            detector: self.detector.clone(),
            frames,
            dropped_frames: dropped,
            enrolled: self.enrolled.clone(),
            tracking: self.mot.summary(),
            descriptions: self.descriptions,
            description_errors: self.description_errors,
        }
    }
}

/// The person alone in an empty room, facing the camera 1.5 m away.
fn enrollment_frame(
    scenario: &Scenario,
    name: &str,
    look: &crate::scenario::AppearanceSpec,
    textures: &Textures,
) -> Result<Frame, CameraError> {
    let text = format!(
        "name: enroll\ngoal: enroll\ntime_limit_s: 1\ntick_hz: 10\nmap: {{size: [8, 6], resolution: 0.1}}\n\
         robot: {{pose: [1, 3, 0]}}\npeople: [{{name: {name:?}, pose: [2.5, 3, 180], appearance: {{face: {:?}, shirt: [{}, {}, {}], height_m: {}}}}}]\n\
         success: [{{photographed: {name:?}}}]\n",
        look.face, look.shirt[0], look.shirt[1], look.shirt[2], look.height_m
    );
    let mut s = Scenario::parse(&text, "<enrollment>").map_err(|e| CameraError::Config(e.to_string()))?;
    s.robot.camera = scenario.robot.camera.clone();
    let mut w = World::new(&s, 0);
    w.set_robot_pose(Pose2::new(1.0, 3.0, 0.0));
    let r = w.render(&w.camera_model(), textures);
    Frame::new(SimTime::ZERO, r.image, format!("enrollment of {name}")).map_err(|e| CameraError::Config(e.to_string()))
}

/// The memory event for a description that arrived at `now`.
pub fn described_event(d: Description, now: SimTime) -> arbor_memory::Event {
    let text = match &d.entity {
        Some(e) => format!("{e}: {}", d.text),
        None => d.text.clone(),
    };
    let ev = arbor_memory::Event::new(now, arbor_memory::EventKind::Described, text);
    match d.entity {
        Some(e) => ev.with_entity(e),
        None => ev,
    }
}

impl arbor_runtime::Describe for CameraPerception {
    /// Asks about the people who just came into view; returns the descriptions that arrived.
    fn describe(&mut self, now: SimTime, appeared: &[EntityId]) -> Vec<arbor_memory::Event> {
        self.describe_new(now, appeared);
        self.descriptions().into_iter().map(|d| described_event(d, now)).collect()
    }
}
