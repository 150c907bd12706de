//! Camera frames: one RGB image type for every source (the simulator's renderer, image files,
//! ROS 2 `sensor_msgs/Image`), with the checks that turn bad input into errors that name it.

use crate::SimTime;
use image::RgbImage;
use std::path::{Path, PathBuf};

/// Largest side a frame may have (a guard against corrupt headers asking for gigabytes).
pub const MAX_SIDE: u32 = 8192;

/// One camera frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub stamp: SimTime,
    pub image: RgbImage,
    /// Where it came from (file path, "sim camera", a topic): named in errors.
    pub source: String,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{source_name}: cannot decode image: {message}")]
    Decode { source_name: String, message: String },
    #[error("{source_name}: bad frame size {width}x{height} ({why})")]
    Size { source_name: String, width: u32, height: u32, why: String },
    #[error("{source_name}: {message}")]
    Encoding { source_name: String, message: String },
}

impl Frame {
    /// A frame from an image, checked for a usable size.
    pub fn new(stamp: SimTime, image: RgbImage, source: impl Into<String>) -> Result<Self, FrameError> {
        let source = source.into();
        check_size(&source, image.width(), image.height())?;
        Ok(Self { stamp, image, source })
    }

    /// Decodes an image file (PNG or JPEG; grayscale and alpha are converted to RGB).
    pub fn load(path: &Path, stamp: SimTime) -> Result<Self, FrameError> {
        let bytes = std::fs::read(path).map_err(|source| FrameError::Io { path: path.to_path_buf(), source })?;
        Self::decode(&bytes, stamp, path.display().to_string())
    }

    /// Decodes encoded image bytes (PNG or JPEG).
    pub fn decode(bytes: &[u8], stamp: SimTime, source: impl Into<String>) -> Result<Self, FrameError> {
        let source = source.into();
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| FrameError::Decode { source_name: source.clone(), message: e.to_string() })?;
        let (w, h) = reader
            .into_dimensions()
            .map_err(|e| FrameError::Decode { source_name: source.clone(), message: e.to_string() })?;
        check_size(&source, w, h)?;
        let img = image::load_from_memory(bytes)
            .map_err(|e| FrameError::Decode { source_name: source.clone(), message: e.to_string() })?;
        Self::new(stamp, img.to_rgb8(), source)
    }

    /// A frame from raw pixels as ROS 2 `sensor_msgs/Image` carries them: `rgb8`, `bgr8`,
    /// `rgba8`, `bgra8` or `mono8`, rows `step` bytes apart.
    pub fn from_raw(
        stamp: SimTime,
        width: u32,
        height: u32,
        encoding: &str,
        step: usize,
        data: &[u8],
        source: impl Into<String>,
    ) -> Result<Self, FrameError> {
        let source = source.into();
        check_size(&source, width, height)?;
        let channels = match encoding {
            "rgb8" | "bgr8" => 3,
            "rgba8" | "bgra8" => 4,
            "mono8" => 1,
            other => {
                return Err(FrameError::Encoding {
                    source_name: source,
                    message: format!("unsupported encoding '{other}' (rgb8, bgr8, rgba8, bgra8, mono8)"),
                });
            }
        };
        let row = width as usize * channels;
        if step < row || data.len() < step * (height as usize - 1) + row {
            return Err(FrameError::Encoding {
                source_name: source,
                message: format!(
                    "{} bytes of data for {width}x{height} {encoding} with step {step} (need {})",
                    data.len(),
                    step * (height as usize - 1) + row
                ),
            });
        }
        let mut img = RgbImage::new(width, height);
        for y in 0..height as usize {
            let src = &data[y * step..y * step + row];
            for x in 0..width as usize {
                let p = &src[x * channels..(x + 1) * channels];
                let rgb = match encoding {
                    "rgb8" | "rgba8" => [p[0], p[1], p[2]],
                    "bgr8" | "bgra8" => [p[2], p[1], p[0]],
                    _ => [p[0], p[0], p[0]],
                };
                img.put_pixel(x as u32, y as u32, image::Rgb(rgb));
            }
        }
        Self::new(stamp, img, source)
    }
}

fn check_size(source: &str, width: u32, height: u32) -> Result<(), FrameError> {
    let why = if width == 0 || height == 0 {
        "empty"
    } else if width > MAX_SIDE || height > MAX_SIDE {
        "larger than 8192 pixels on a side"
    } else if width < 16 || height < 16 {
        "smaller than 16 pixels on a side"
    } else {
        return Ok(());
    };
    Err(FrameError::Size { source_name: source.to_string(), width, height, why: why.into() })
}

/// The image files of a directory (`.png`, `.jpg`, `.jpeg`), sorted by name; or the path
/// itself when it is a file.
pub fn image_paths(path: &Path) -> Result<Vec<PathBuf>, FrameError> {
    let io = |source| FrameError::Io { path: path.to_path_buf(), source };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let p = entry.map_err(io)?.path();
        let ext = p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if p.is_file() && matches!(ext.as_deref(), Some("png" | "jpg" | "jpeg")) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_and_odd_inputs_are_named_errors() {
        let e = Frame::decode(b"\x89PNG\r\n\x1a\nnot really", SimTime::ZERO, "bad.png").unwrap_err();
        assert!(e.to_string().starts_with("bad.png: cannot decode image"), "{e}");
        let e = Frame::new(SimTime::ZERO, RgbImage::new(0, 10), "cam").unwrap_err();
        assert!(e.to_string().contains("0x10 (empty)"), "{e}");
        let e = Frame::from_raw(SimTime::ZERO, 32, 32, "yuv422", 64, &[0; 2048], "/camera").unwrap_err();
        assert!(e.to_string().contains("unsupported encoding 'yuv422'"), "{e}");
        let e = Frame::from_raw(SimTime::ZERO, 32, 32, "rgb8", 96, &[0; 100], "/camera").unwrap_err();
        assert!(e.to_string().contains("100 bytes of data"), "{e}");
    }

    #[test]
    fn raw_encodings_convert_to_rgb() {
        let data: Vec<u8> = (0..32 * 16).flat_map(|_| [10u8, 20, 30]).collect();
        let f = Frame::from_raw(SimTime::ZERO, 32, 16, "bgr8", 96, &data, "t").unwrap();
        assert_eq!(f.image.get_pixel(3, 3).0, [30, 20, 10]);
        let mut png = Vec::new();
        f.image.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let g = Frame::decode(&png, SimTime::ZERO, "mem").unwrap();
        assert_eq!(g.image, f.image);
    }
}
