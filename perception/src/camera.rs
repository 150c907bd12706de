//! Camera geometry: a pinhole model (intrinsics), where the camera sits on the robot
//! (extrinsics: offset, mount height, pitch), and the robot's pose give a detection a world
//! position, from the known size of what was detected or from where it touches the floor,
//! with a 1-sigma uncertainty.

use crate::detect::BBox;
use crate::{Point2, Pose2};
use serde::{Deserialize, Serialize};

/// A pinhole camera on the robot. Pixel (0, 0) is the top-left corner; the optical axis
/// points along the robot's heading plus `yaw`, tilted down by `pitch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraModel {
    pub width: u32,
    pub height: u32,
    pub fx: f64,
    pub fy: f64,
    pub cx: f64,
    pub cy: f64,
    /// Camera position in the robot frame (x forward, y left), metres.
    #[serde(default)]
    pub x: f64,
    #[serde(default)]
    pub y: f64,
    /// Height of the optical centre above the floor, metres.
    pub mount_height: f64,
    /// Yaw relative to the robot heading, radians (left positive).
    #[serde(default)]
    pub yaw: f64,
    /// Downward tilt, radians.
    #[serde(default)]
    pub pitch: f64,
}

/// Where a detection is, and how sure that is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Located {
    pub position: Point2,
    /// Horizontal distance from the camera, metres.
    pub range: f64,
    /// Bearing from the camera's axis, radians, left positive.
    pub bearing: f64,
    /// 1-sigma position uncertainty, metres.
    pub sigma: f64,
}

/// Pixel noise assumed for a box edge.
const EDGE_SIGMA_PX: f64 = 1.5;

impl CameraModel {
    /// A camera with square pixels, the principal point at the image centre, and the given
    /// horizontal field of view.
    pub fn from_fov(width: u32, height: u32, hfov: f64, mount_height: f64) -> Self {
        let f = f64::from(width) / 2.0 / (hfov / 2.0).tan();
        Self {
            width,
            height,
            fx: f,
            fy: f,
            cx: f64::from(width) / 2.0,
            cy: f64::from(height) / 2.0,
            x: 0.0,
            y: 0.0,
            mount_height,
            yaw: 0.0,
            pitch: 0.0,
        }
    }

    pub fn hfov(&self) -> f64 {
        2.0 * (f64::from(self.width) / 2.0 / self.fx).atan()
    }

    /// The camera's pose in the world for a robot pose.
    pub fn pose(&self, robot: Pose2) -> Pose2 {
        let (s, c) = robot.yaw.sin_cos();
        Pose2::new(robot.x + c * self.x - s * self.y, robot.y + s * self.x + c * self.y, robot.yaw + self.yaw)
    }

    /// A camera-relative point (forward, left, up from the floor) into pixel (u, v) and
    /// depth along the optical axis; None behind the camera.
    pub fn project_local(&self, forward: f64, left: f64, z: f64) -> Option<(f64, f64, f64)> {
        let down = self.mount_height - z;
        let (s, c) = self.pitch.sin_cos();
        let yc = -forward * s + down * c;
        let zc = forward * c + down * s;
        if zc <= 1e-6 {
            return None;
        }
        Some((self.cx + self.fx * (-left) / zc, self.cy + self.fy * yc / zc, zc))
    }

    /// A world point at height `z` into pixel (u, v) and depth; None behind the camera.
    pub fn project(&self, robot: Pose2, p: Point2, z: f64) -> Option<(f64, f64, f64)> {
        let local = self.pose(robot).to_local(p);
        self.project_local(local.x, local.y, z)
    }

    /// The ray through pixel (u, v) in the camera's level frame: (forward, left, down) per
    /// unit of optical depth.
    fn ray(&self, u: f64, v: f64) -> (f64, f64, f64) {
        let (x, y) = ((u - self.cx) / self.fx, (v - self.cy) / self.fy);
        let (s, c) = self.pitch.sin_cos();
        (c - y * s, -x, y * c + s)
    }

    fn place(&self, robot: Pose2, forward: f64, left: f64, sigma: f64) -> Located {
        let cam = self.pose(robot);
        let (s, c) = cam.yaw.sin_cos();
        let position = Point2::new(cam.x + c * forward - s * left, cam.y + s * forward + c * left);
        Located { position, range: forward.hypot(left), bearing: left.atan2(forward), sigma }
    }

    /// Locates something of known real height (`size_m`, e.g. a face) from the height of
    /// its box: depth = fy * size / pixels. Uncertainty from edge noise and the size prior's
    /// relative spread `size_spread`.
    pub fn locate_by_size(&self, robot: Pose2, bbox: &BBox, size_m: f64, size_spread: f64) -> Option<Located> {
        let h = f64::from(bbox.height());
        if h < 1.0 || size_m <= 0.0 {
            return None;
        }
        let (u, v) = bbox.center();
        let depth = self.fy * size_m / h;
        let (f, l, _) = self.ray(f64::from(u), f64::from(v));
        let (forward, left) = (f * depth, l * depth);
        let range = forward.hypot(left);
        let rel = ((EDGE_SIGMA_PX * std::f64::consts::SQRT_2 / h).powi(2) + size_spread.powi(2)).sqrt();
        let lateral = range * EDGE_SIGMA_PX / self.fx;
        Some(self.place(robot, forward, left, ((range * rel).powi(2) + lateral.powi(2)).sqrt()))
    }

    /// Locates something standing on the floor from the bottom edge of its box (the ray
    /// through the bottom centre meets the floor). None when that ray does not go down.
    pub fn locate_on_ground(&self, robot: Pose2, bbox: &BBox) -> Option<Located> {
        let (u, _) = bbox.center();
        let (f, l, d) = self.ray(f64::from(u), f64::from(bbox.y2));
        if d <= 1e-6 {
            return None;
        }
        let t = self.mount_height / d;
        let (forward, left) = (f * t, l * t);
        let range = forward.hypot(left);
        // d(range)/d(v): moving the bottom edge by one pixel.
        let (f2, l2, d2) = self.ray(f64::from(u), f64::from(bbox.y2) + EDGE_SIGMA_PX);
        let r2 = if d2 > 1e-6 { (f2 * self.mount_height / d2).hypot(l2 * self.mount_height / d2) } else { range * 2.0 };
        let lateral = range * EDGE_SIGMA_PX / self.fx;
        Some(self.place(robot, forward, left, ((range - r2).powi(2) + lateral.powi(2)).sqrt()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::FRAC_PI_2;

    #[test]
    fn project_then_locate_round_trips() {
        let mut cam = CameraModel::from_fov(640, 480, FRAC_PI_2, 1.2);
        cam.x = 0.1;
        let robot = Pose2::new(2.0, 3.0, 0.7);
        let target = Point2::new(4.5, 5.0);
        // A 0.24 m face centred 1.6 m up.
        let (u, v1, _) = cam.project(robot, target, 1.72).unwrap();
        let (_, v2, _) = cam.project(robot, target, 1.48).unwrap();
        let b = BBox::new(u as f32 - 10.0, v1 as f32, u as f32 + 10.0, v2 as f32);
        let loc = cam.locate_by_size(robot, &b, 0.24, 0.1).unwrap();
        assert!(loc.position.distance(target) < 0.02, "{loc:?}");
        assert!(loc.sigma > 0.0 && loc.sigma < 0.6, "{loc:?}");
        // Ground contact, with the camera tilted down.
        cam.pitch = 0.2;
        let (u, v, _) = cam.project(robot, target, 0.0).unwrap();
        let b = BBox::new(u as f32 - 5.0, v as f32 - 40.0, u as f32 + 5.0, v as f32);
        let loc = cam.locate_on_ground(robot, &b).unwrap();
        assert!(loc.position.distance(target) < 0.02, "{loc:?}");
        // Nothing behind the camera projects.
        assert!(cam.project(robot, Point2::new(0.0, 0.0), 1.0).is_none());
    }

    #[test]
    fn bearing_sign_is_left_positive() {
        let cam = CameraModel::from_fov(640, 480, FRAC_PI_2, 1.0);
        let b = BBox::new(100.0, 200.0, 120.0, 224.0);
        let loc = cam.locate_by_size(Pose2::default(), &b, 0.24, 0.1).unwrap();
        assert!(loc.bearing > 0.0 && loc.position.y > 0.0);
        assert!((cam.hfov() - FRAC_PI_2).abs() < 1e-12);
    }
}
