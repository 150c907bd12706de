//! The simulator's camera, rendered: what the robot's pinhole camera sees, in pixels. Walls,
//! floor and ceiling by ray casting one image column at a time (the camera is level: its
//! pitch is 0, so vertical edges stay vertical), people as upright billboards (legs, shirt,
//! a head with a real face photograph wrapped on a cylinder and turned by the person's head
//! yaw, or hair when they look away), objects as coloured boxes on stands. The ground truth
//! (which face is where) comes out beside the image, for evaluation only.

use super::World;
use crate::scenario::AppearanceSpec;
use arbor_core::geometry::normalize_angle;
use arbor_core::{Point2, Pose2};
use arbor_perception::camera::CameraModel;
use arbor_perception::detect::BBox;
use image::{Rgb, RgbImage};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const WALL_HEIGHT: f64 = 2.5;
const HEAD_W: f64 = 0.2;
const HEAD_H: f64 = 0.27;
const BODY_W: f64 = 0.46;
const LEG_W: f64 = 0.32;
const HIP: f64 = 0.85;
const HAIR: [u8; 3] = [58, 40, 30];
/// Share of the head's width and height (from the chin up) the face photograph covers.
const FACE_U: f64 = 0.86;
const FACE_V: f64 = 0.84;

const SHIRTS: [[u8; 3]; 8] = [
    [200, 40, 40],
    [40, 90, 200],
    [40, 160, 70],
    [230, 180, 40],
    [140, 60, 170],
    [240, 120, 30],
    [30, 170, 170],
    [230, 230, 230],
];

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{path}: {message} (run `bash .ci/models`)")]
    Texture { path: PathBuf, message: String },
}

/// Face photographs the renderer draws, by name: `astronaut`, `camera`, `lfw:0`..`lfw:99`.
#[derive(Debug, Clone, Default)]
pub struct Textures {
    faces: BTreeMap<String, RgbImage>,
}

/// Where the face photographs are: `<models dir>/images`.
pub fn textures_dir() -> PathBuf {
    arbor_perception::onnx::models_dir().join("images")
}

fn read_npy_f64(path: &Path) -> Result<(Vec<usize>, Vec<f64>), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (hlen, start) = if bytes[6] == 1 {
        (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10)
    } else {
        if bytes.len() < 12 {
            return Err("truncated header".into());
        }
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(bytes.get(start..start + hlen).ok_or("truncated header")?)
        .map_err(|_| "header is not text")?;
    if !header.contains("'descr': '<f8'") || header.contains("'fortran_order': True") {
        return Err(format!("expected little-endian float64 in C order, header {header}"));
    }
    let shape_txt = header.split("'shape': (").nth(1).and_then(|r| r.split(')').next()).ok_or("no shape in header")?;
    let shape: Vec<usize> =
        shape_txt.split(',').filter(|s| !s.trim().is_empty()).filter_map(|s| s.trim().parse().ok()).collect();
    let n: usize = shape.iter().product();
    let data = &bytes[start + hlen..];
    if data.len() < n * 8 {
        return Err(format!("{} bytes of data for shape {shape:?}", data.len()));
    }
    Ok((shape, data.chunks_exact(8).take(n).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect()))
}

impl Textures {
    /// Loads the photographs from `dir` (astronaut.png, camera.png, lfw_subset.npy).
    pub fn load(dir: &Path) -> Result<Self, RenderError> {
        let mut faces = BTreeMap::new();
        let err = |path: &Path, message: String| RenderError::Texture { path: path.to_path_buf(), message };
        // Face crops: the detected face box widened a little (hair, chin).
        for (name, crop) in [("astronaut", (168u32, 40u32, 116u32, 150u32)), ("camera", (193, 108, 74, 100))] {
            let path = dir.join(format!("{name}.png"));
            let img = image::open(&path).map_err(|e| err(&path, e.to_string()))?.to_rgb8();
            let (x, y, w, h) = crop;
            if img.width() < x + w || img.height() < y + h {
                return Err(err(&path, format!("{}x{} is too small", img.width(), img.height())));
            }
            faces.insert(name.to_string(), image::imageops::crop_imm(&img, x, y, w, h).to_image());
        }
        let path = dir.join("lfw_subset.npy");
        let (shape, data) = read_npy_f64(&path).map_err(|m| err(&path, m))?;
        if shape.len() != 3 || shape[0] < 100 || shape[1] == 0 || shape[2] == 0 {
            return Err(err(&path, format!("shape {shape:?}, expected (200, 25, 25)")));
        }
        let (h, w) = (shape[1], shape[2]);
        for i in 0..100 {
            let mut img = RgbImage::new(w as u32, h as u32);
            for (k, px) in img.pixels_mut().enumerate() {
                let g = (data[i * h * w + k].clamp(0.0, 1.0) * 255.0) as f32;
                // A warm tint: the photographs are grey.
                *px = Rgb([g as u8, (g * 0.88) as u8, (g * 0.78) as u8]);
            }
            faces.insert(format!("lfw:{i}"), img);
        }
        Ok(Self { faces })
    }

    pub fn face(&self, name: &str) -> Option<&RgbImage> {
        self.faces.get(name)
    }
}

/// The default look of the i-th person of a scenario.
pub fn default_appearance(i: usize) -> AppearanceSpec {
    AppearanceSpec { face: format!("lfw:{}", (i * 37 + 5) % 100), shirt: SHIRTS[i % SHIRTS.len()], height_m: 1.72 }
}

/// A face in a rendered frame (ground truth, for evaluation).
#[derive(Debug, Clone, PartialEq)]
pub struct TrueFace {
    pub name: String,
    /// The face's box in the image (the photographed region of the head).
    pub bbox: BBox,
    pub position: Point2,
    /// Head yaw relative to the camera (0 = facing it), radians.
    pub yaw: f64,
    /// The face (not the back of the head) is turned to the camera.
    pub facing: bool,
}

/// One rendered frame and its ground truth.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub image: RgbImage,
    pub faces: Vec<TrueFace>,
}

fn shade(c: [u8; 3], f: f64) -> Rgb<u8> {
    Rgb(c.map(|v| (f64::from(v) * f).clamp(0.0, 255.0) as u8))
}

fn bilinear(img: &RgbImage, u: f64, v: f64) -> [u8; 3] {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let x = (u * w - 0.5).clamp(0.0, w - 1.0);
    let y = (v * h - 0.5).clamp(0.0, h - 1.0);
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(img.width() - 1), (y0 + 1).min(img.height() - 1));
    let (fx, fy) = (x - x.floor(), y - y.floor());
    let p = |xx, yy| img.get_pixel(xx, yy).0.map(f64::from);
    let (a, b, c, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
    let mut out = [0u8; 3];
    for k in 0..3 {
        let top = a[k] + (b[k] - a[k]) * fx;
        let bot = c[k] + (d[k] - c[k]) * fx;
        out[k] = (top + (bot - top) * fy).round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// A ray from `o` along `d` against a segment: the distance along the ray, if it hits.
fn ray_hit(o: Point2, d: (f64, f64), a: Point2, b: Point2) -> Option<(f64, f64)> {
    let (ex, ey) = (b.x - a.x, b.y - a.y);
    let den = d.0 * ey - d.1 * ex;
    if den.abs() < 1e-12 {
        return None;
    }
    let (wx, wy) = (a.x - o.x, a.y - o.y);
    let t = (wx * ey - wy * ex) / den;
    let s = (wx * d.1 - wy * d.0) / den;
    (t > 1e-6 && (-1e-9..=1.0 + 1e-9).contains(&s)).then_some((t, s * ex.hypot(ey)))
}

impl World {
    /// The camera model of this world's robot camera.
    pub fn camera_model(&self) -> CameraModel {
        CameraModel::from_fov(self.camera.width, self.camera.height, self.robot.fov, self.camera.mount_height)
    }

    /// Renders what the robot's camera sees now.
    pub fn render(&self, cam: &CameraModel, tex: &Textures) -> Rendered {
        let (w, h) = (cam.width, cam.height);
        let mut img = RgbImage::new(w, h);
        let pose: Pose2 = cam.pose(self.robot.pose);
        let origin = pose.position();
        let [mw, mh] = self.map_size;
        let mut walls: Vec<(Point2, Point2)> = self.grid.walls().iter().map(|wl| (wl.a, wl.b)).collect();
        let corners = [Point2::new(0.0, 0.0), Point2::new(mw, 0.0), Point2::new(mw, mh), Point2::new(0.0, mh)];
        for i in 0..4 {
            walls.push((corners[i], corners[(i + 1) % 4]));
        }
        let mut zbuf = vec![f64::INFINITY; w as usize];
        for u in 0..w {
            let b = ((cam.cx - (f64::from(u) + 0.5)) / cam.fx).atan();
            let (cb, th) = (b.cos(), pose.yaw + b);
            let d = (th.cos(), th.sin());
            let hit = walls
                .iter()
                .enumerate()
                .filter_map(|(k, (a, bb))| ray_hit(origin, d, *a, *bb).map(|(t, along)| (t, along, k)))
                .min_by(|x, y| x.0.total_cmp(&y.0));
            let (dist, along, wall_idx) = hit.unwrap_or((1e3, 0.0, 0));
            let depth = dist * cb;
            zbuf[u as usize] = depth;
            let v_top = cam.cy - cam.fy * (WALL_HEIGHT - cam.mount_height) / depth;
            let v_bot = cam.cy + cam.fy * cam.mount_height / depth;
            let wall_base = [[214, 206, 190], [190, 205, 214], [205, 214, 192], [214, 196, 204]][wall_idx % 4];
            let fog = 1.0 / (1.0 + 0.04 * dist);
            let stripe = if along.rem_euclid(1.0) < 0.04 { 0.8 } else { 1.0 };
            for v in 0..h {
                let vc = f64::from(v) + 0.5;
                let px = if vc < v_top {
                    shade([236, 236, 232], 0.85 + 0.15 * vc / f64::from(h))
                } else if vc <= v_bot {
                    let low = if (vc - v_bot).abs() < (v_bot - v_top) * 0.04 { 0.6 } else { 1.0 };
                    shade(wall_base, (0.55 + 0.45 * fog) * stripe * low)
                } else {
                    // Floor: where this pixel's ray meets the ground, 0.5 m tiles.
                    let gd = cam.fy * cam.mount_height / (vc - cam.cy) / cb;
                    let (gx, gy) = (origin.x + d.0 * gd, origin.y + d.1 * gd);
                    let tile = ((gx * 2.0).floor() as i64 + (gy * 2.0).floor() as i64).rem_euclid(2) == 0;
                    shade(if tile { [150, 130, 110] } else { [172, 152, 128] }, 0.6 + 0.4 / (1.0 + 0.08 * gd))
                };
                img.put_pixel(u, v, px);
            }
        }
        // Billboards, far to near.
        struct Board<'a> {
            depth: f64,
            left: f64,
            kind: BoardKind<'a>,
        }
        enum BoardKind<'a> {
            Person { name: &'a str, look: AppearanceSpec, yaw: f64, pos: Point2 },
            Object { color: [u8; 3] },
        }
        let mut boards: Vec<Board> = Vec::new();
        for (i, p) in self.people.iter().enumerate() {
            let local = pose.to_local(p.pos);
            if local.x > 0.15 {
                let look = p.appearance.clone().unwrap_or_else(|| default_appearance(i));
                let yaw = normalize_angle(p.head - p.pos.bearing_to(origin));
                boards.push(Board {
                    depth: local.x,
                    left: local.y,
                    kind: BoardKind::Person { name: &p.name, look, yaw, pos: p.pos },
                });
            }
        }
        for o in &self.objects {
            let local = pose.to_local(o.pos);
            if local.x > 0.15 {
                let hsh = o.label.bytes().fold(7u32, |a, b| a.wrapping_mul(31).wrapping_add(u32::from(b)));
                let color = [
                    (hsh & 0xff) as u8 / 2 + 60,
                    ((hsh >> 8) & 0xff) as u8 / 2 + 60,
                    ((hsh >> 16) & 0xff) as u8 / 2 + 60,
                ];
                boards.push(Board { depth: local.x, left: local.y, kind: BoardKind::Object { color } });
            }
        }
        boards.sort_by(|a, b| b.depth.total_cmp(&a.depth));
        let mut faces = Vec::new();
        let col = |x: f64| cam.cx - cam.fx * x; // x = left / depth
        let row = |z: f64, depth: f64| cam.cy - cam.fy * (z - cam.mount_height) / depth;
        for bd in &boards {
            let (dz, uc) = (bd.depth, col(bd.left / bd.depth));
            let px_per_m = cam.fx / dz;
            let fill = |x0: f64,
                        x1: f64,
                        z0: f64,
                        z1: f64,
                        img: &mut RgbImage,
                        color: &dyn Fn(f64, f64) -> Option<[u8; 3]>| {
                let (u0, u1) = ((uc + x0 * px_per_m).floor().max(0.0), (uc + x1 * px_per_m).ceil().min(f64::from(w)));
                let (v0, v1) = (row(z1, dz).floor().max(0.0), row(z0, dz).ceil().min(f64::from(h)));
                let mut u = u0;
                while u < u1 {
                    let ui = u as u32;
                    if dz < zbuf[ui as usize] {
                        let fu = ((u + 0.5 - (uc + x0 * px_per_m)) / ((x1 - x0) * px_per_m)).clamp(0.0, 1.0);
                        let mut v = v0;
                        while v < v1 {
                            let fv = ((v + 0.5 - row(z1, dz)) / (row(z0, dz) - row(z1, dz))).clamp(0.0, 1.0);
                            if let Some(c) = color(fu, fv) {
                                img.put_pixel(ui, v as u32, Rgb(c));
                            }
                            v += 1.0;
                        }
                    }
                    u += 1.0;
                }
            };
            match &bd.kind {
                BoardKind::Object { color } => {
                    fill(-0.25, 0.25, 0.0, 0.7, &mut img, &|_, _| Some([110, 85, 60]));
                    fill(-0.15, 0.15, 0.7, 0.95, &mut img, &|_, fv| Some(shade(*color, 0.8 + 0.2 * fv).0));
                }
                BoardKind::Person { name, look, yaw, pos } => {
                    let top = look.height_m;
                    let neck = top - HEAD_H;
                    let shirt = look.shirt;
                    fill(-LEG_W / 2.0, LEG_W / 2.0, 0.0, HIP, &mut img, &|fu, _| {
                        (!(0.46..=0.54).contains(&fu)).then_some([50, 55, 70])
                    });
                    fill(-BODY_W / 2.0, BODY_W / 2.0, HIP, neck - 0.03, &mut img, &|fu, fv| {
                        // Shoulders rounded off at the top corners.
                        let edge = (fu - 0.5).abs() * 2.0;
                        (fv > 0.12 || edge < 0.8).then(|| shade(shirt, 0.85 + 0.15 * (1.0 - edge)).0)
                    });
                    fill(-0.04, 0.04, neck - 0.04, neck + 0.02, &mut img, &|_, _| Some([180, 150, 125]));
                    let facing = yaw.abs() < std::f64::consts::FRAC_PI_2;
                    let texture = tex.face(&look.face);
                    let y = *yaw;
                    fill(-HEAD_W / 2.0, HEAD_W / 2.0, neck, top, &mut img, &|fu, fv| {
                        // Inside the head's ellipse only.
                        let (ex, ey) = (fu * 2.0 - 1.0, fv * 2.0 - 1.0);
                        if ex * ex + ey * ey > 1.0 {
                            return None;
                        }
                        // The face wraps a vertical cylinder: screen x = sin(angle on the head),
                        // turned by the head's yaw relative to the camera.
                        let xs = ex / (1.0 - ey * ey).sqrt().max(1e-6);
                        let phi = xs.clamp(-1.0, 1.0).asin() - y;
                        let light = 0.75 + 0.25 * (1.0 - xs * xs).max(0.0).sqrt();
                        // The photograph covers the face (the head's lower FACE_V, the middle
                        // FACE_U of its width); hair around it.
                        let tu = (phi.sin() / FACE_U + 1.0) / 2.0;
                        let tv = (fv - (1.0 - FACE_V)) / FACE_V;
                        match texture {
                            Some(t)
                                if phi.abs() < std::f64::consts::FRAC_PI_2
                                    && (0.0..=1.0).contains(&tu)
                                    && (0.0..=1.0).contains(&tv) =>
                            {
                                Some(shade(bilinear(t, tu, tv), light).0)
                            }
                            _ => Some(shade(HAIR, light).0),
                        }
                    });
                    // The photographed face region (what a face detector's box covers).
                    let bbox = BBox::new(
                        (uc - FACE_U * HEAD_W / 2.0 * px_per_m) as f32,
                        row(neck + FACE_V * HEAD_H, dz) as f32,
                        (uc + FACE_U * HEAD_W / 2.0 * px_per_m) as f32,
                        row(neck, dz) as f32,
                    );
                    let centre = uc.clamp(0.0, f64::from(w) - 1.0) as usize;
                    let inside = bbox.x1 >= 0.0 && bbox.x2 <= w as f32 && bbox.y1 >= 0.0 && bbox.y2 <= h as f32;
                    if inside && dz < zbuf[centre] {
                        faces.push(TrueFace { name: name.to_string(), bbox, position: *pos, yaw: y, facing });
                    }
                }
            }
            // Nearer boards hide this one's columns from boards drawn later? No: later boards
            // are nearer and simply paint over; walls were handled by the depth test.
        }
        // A face hidden behind a nearer person's head or body is not visible ground truth.
        let visible: Vec<TrueFace> = faces
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                !faces.iter().enumerate().any(|(j, g)| {
                    j > *i && {
                        let gd = self.robot.pose.position().distance(g.position);
                        let fd = self.robot.pose.position().distance(f.position);
                        let (fc, _) = f.bbox.center();
                        gd < fd && fc > g.bbox.x1 - g.bbox.width() * 1.3 && fc < g.bbox.x2 + g.bbox.width() * 1.3
                    }
                })
            })
            .map(|(_, f)| f.clone())
            .collect();
        Rendered { image: img, faces: visible }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_reader_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        std::fs::write(&p, b"hello").unwrap();
        assert!(read_npy_f64(&p).unwrap_err().contains("not a .npy"));
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
        v.extend((header.len() as u16).to_le_bytes());
        v.extend(header.as_bytes());
        for x in [1.0f64, 2.0, 3.0, 4.0] {
            v.extend(x.to_le_bytes());
        }
        std::fs::write(&p, &v).unwrap();
        assert_eq!(read_npy_f64(&p).unwrap(), (vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
    }

    #[test]
    fn rays_hit_segments() {
        let o = Point2::new(0.0, 0.0);
        let hit = ray_hit(o, (1.0, 0.0), Point2::new(2.0, -1.0), Point2::new(2.0, 1.0)).unwrap();
        assert!((hit.0 - 2.0).abs() < 1e-9 && (hit.1 - 1.0).abs() < 1e-9);
        assert!(ray_hit(o, (-1.0, 0.0), Point2::new(2.0, -1.0), Point2::new(2.0, 1.0)).is_none());
    }
}
