//! `arbor perceive <image|dir>`: run the detector on image files and print what it found.

use anyhow::{Context, Result};
use arbor_core::SimTime;
use arbor_perception::describe::Describer;
use arbor_perception::detect::{DetectorConfig, load_config};
use arbor_perception::frame::{Frame, image_paths};
use arbor_perception::pipeline::PipelineConfig;
use arbor_sim::camera::DescriberFactory;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

/// Options of `arbor perceive`.
#[derive(clap::Args, Debug, Clone)]
pub struct PerceiveArgs {
    /// An image file (PNG or JPEG) or a directory of them.
    pub input: std::path::PathBuf,
    /// Detector configuration (YAML: kind, model, threads, thresholds, classes); default
    /// CenterFace from the models directory.
    #[arg(long)]
    pub detector: Option<std::path::PathBuf>,
    /// Intra-op threads for ONNX Runtime (0 = one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Score threshold (overrides the configuration's).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// One JSON object per image instead of text.
    #[arg(long)]
    pub json: bool,
}

/// How `arbor sim` perceives.
#[derive(clap::Args, Debug, Clone)]
pub struct PerceptionArgs {
    /// `ground-truth` (the simulator's entities plus noise) or `camera` (rendered frames through
    /// the real detector, tracker, geometry and attention; reports MOTA/IDF1).
    #[arg(long, default_value = "ground-truth", value_parser = ["ground-truth", "camera"])]
    pub perception: String,
    /// Pipeline settings for `--perception camera` (YAML: detector, tracker, attention, ...).
    #[arg(long)]
    pub perception_config: Option<std::path::PathBuf>,
    /// ONNX Runtime threads for the camera's detector (0 = one per core).
    #[arg(long)]
    pub perception_threads: Option<usize>,
    /// Describe people coming into view with an OpenAI-compatible chat endpoint
    /// (http://host:port; llama-server, vLLM, Ollama); `described` events in memory.
    #[arg(long)]
    pub describe_endpoint: Option<String>,
    /// The model name sent to --describe-endpoint.
    #[arg(long, default_value = "default")]
    pub describe_model: String,
    /// Describe with llama.cpp's multimodal library: a GGUF language model... (feature `llm`)
    #[arg(long, requires = "describe_mmproj")]
    pub describe_gguf: Option<std::path::PathBuf>,
    /// ...and its mmproj projector file.
    #[arg(long, requires = "describe_gguf")]
    pub describe_mmproj: Option<std::path::PathBuf>,
    /// Least robot time between description requests, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub describe_interval: f64,
}

/// A perception pipeline file (detector, tracker, attention), or the defaults without one.
pub fn pipeline_config(path: Option<&std::path::Path>) -> Result<PipelineConfig> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let cfg = serde_yaml::from_str::<PipelineConfig>(&text).with_context(|| p.display().to_string())?;
            cfg.validate().map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            Ok(cfg)
        }
        None => Ok(PipelineConfig::default()),
    }
}

impl PerceptionArgs {
    pub fn mode(&self) -> Result<arbor_sim::camera::PerceptionMode> {
        if self.perception != "camera" {
            if self.perception_config.is_some() {
                anyhow::bail!("--perception-config needs --perception camera");
            }
            return Ok(arbor_sim::camera::PerceptionMode::GroundTruth);
        }
        let mut cfg = pipeline_config(self.perception_config.as_deref())?;
        if let Some(t) = self.perception_threads {
            cfg.detector.threads = t;
        }
        let describer = self.describer()?;
        Ok(arbor_sim::camera::PerceptionMode::Camera(Box::new(arbor_sim::camera::CameraSetup {
            pipeline: cfg,
            describer,
            describe_interval_s: self.describe_interval,
        })))
    }

    fn describer(&self) -> Result<Option<DescriberFactory>> {
        if let Some(url) = &self.describe_endpoint {
            if self.describe_gguf.is_some() {
                anyhow::bail!("give --describe-endpoint or --describe-gguf, not both");
            }
            let d = arbor_perception::describe::HttpDescriber::new(url.clone(), self.describe_model.clone());
            return Ok(Some(DescriberFactory(Arc::new(move || Ok(Box::new(d.clone()) as Box<dyn Describer>)))));
        }
        let (Some(model), Some(mmproj)) = (self.describe_gguf.clone(), self.describe_mmproj.clone()) else {
            return Ok(None);
        };
        #[cfg(feature = "llm")]
        {
            Ok(Some(DescriberFactory(Arc::new(move || {
                arbor_planner::vlm::MtmdDescriber::load(&model, &mmproj, 2, 48)
                    .map(|d| Box::new(d) as Box<dyn Describer>)
            }))))
        }
        #[cfg(not(feature = "llm"))]
        {
            let _ = (model, mmproj);
            anyhow::bail!("--describe-gguf needs arbor built with the `llm` feature (cargo build --features llm)")
        }
    }
}

pub fn perceive(args: &PerceiveArgs) -> Result<ExitCode> {
    let mut cfg = match &args.detector {
        Some(p) => load_config(p)?,
        None => DetectorConfig::centerface(),
    };
    if let Some(t) = args.threads {
        cfg.threads = t;
    }
    if let Some(s) = args.threshold {
        cfg.score_threshold = s;
    }
    let mut detector = cfg.build().context("loading the detector")?;
    let paths = image_paths(&args.input)?;
    if paths.is_empty() {
        anyhow::bail!("{}: no .png/.jpg/.jpeg files", args.input.display());
    }
    let mut failed = 0usize;
    for path in &paths {
        match detect_one(detector.as_mut(), path) {
            Ok((dets, ms, (w, h))) => {
                if args.json {
                    let v = serde_json::json!({
                        "image": path.display().to_string(), "width": w, "height": h,
                        "latency_ms": ms, "detections": dets,
                    });
                    println!("{v}");
                } else {
                    println!("{} ({w}x{h}, {ms:.1} ms): {} detection(s)", path.display(), dets.len());
                    for d in &dets {
                        let b = d.bbox;
                        print!("  {} {:.2} box [{:.0}, {:.0}, {:.0}, {:.0}]", d.label, d.score, b.x1, b.y1, b.x2, b.y2);
                        if let Some(lm) = d.landmarks {
                            let pts: Vec<String> = lm.iter().map(|p| format!("({:.0}, {:.0})", p[0], p[1])).collect();
                            print!(" landmarks {}", pts.join(" "));
                        }
                        println!();
                    }
                }
            }
            Err(e) => {
                // A bad image is reported and skipped; the others still run.
                failed += 1;
                if args.json {
                    println!(
                        "{}",
                        serde_json::json!({ "image": path.display().to_string(), "error": format!("{e:#}") })
                    );
                } else {
                    eprintln!("error: {e:#}");
                }
            }
        }
    }
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

type Detected = (Vec<arbor_perception::detect::Detection>, f64, (u32, u32));

fn detect_one(detector: &mut dyn arbor_perception::detect::Detector, path: &Path) -> Result<Detected> {
    let frame = Frame::load(path, SimTime::ZERO)?;
    let t0 = Instant::now();
    let dets = detector.detect(&frame.image).with_context(|| path.display().to_string())?;
    Ok((dets, t0.elapsed().as_secs_f64() * 1e3, (frame.image.width(), frame.image.height())))
}
