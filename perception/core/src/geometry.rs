//! 2D poses in the world (map) frame. nalgebra does the math; the serialised form stays plain.

use nalgebra::{Isometry2, Vector2};
use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// A point on the ground plane, metres, world frame.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Point2 {
    pub x: f64,
    pub y: f64,
}

impl Point2 {
    pub const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    pub fn vector(self) -> Vector2<f64> {
        Vector2::new(self.x, self.y)
    }

    pub fn from_vector(v: Vector2<f64>) -> Self {
        Self { x: v.x, y: v.y }
    }

    pub fn distance(self, other: Point2) -> f64 {
        (other.vector() - self.vector()).norm()
    }

    /// Bearing of `other` seen from `self`, radians in (-pi, pi], world frame.
    pub fn bearing_to(self, other: Point2) -> f64 {
        (other.y - self.y).atan2(other.x - self.x)
    }

    /// Moves from `self` towards `target` by at most `step` metres.
    pub fn step_towards(self, target: Point2, step: f64) -> Point2 {
        let d = target.vector() - self.vector();
        let n = d.norm();
        if n <= step || n == 0.0 { target } else { Point2::from_vector(self.vector() + d * (step / n)) }
    }
}

/// A planar pose: position plus heading (yaw, radians, counter-clockwise from +x).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Pose2 {
    pub x: f64,
    pub y: f64,
    pub yaw: f64,
}

impl Pose2 {
    pub const fn new(x: f64, y: f64, yaw: f64) -> Self {
        Self { x, y, yaw }
    }

    pub fn position(&self) -> Point2 {
        Point2::new(self.x, self.y)
    }

    pub fn isometry(&self) -> Isometry2<f64> {
        Isometry2::new(Vector2::new(self.x, self.y), self.yaw)
    }

    /// A world point expressed in this pose's frame (x forward, y left).
    pub fn to_local(&self, p: Point2) -> Point2 {
        let local = self.isometry().inverse_transform_point(&nalgebra::Point2::new(p.x, p.y));
        Point2::new(local.x, local.y)
    }

    /// Angle between this pose's heading and the direction to `p`, radians in [-pi, pi].
    pub fn relative_bearing(&self, p: Point2) -> f64 {
        normalize_angle(self.position().bearing_to(p) - self.yaw)
    }
}

/// Wraps an angle into (-pi, pi].
pub fn normalize_angle(a: f64) -> f64 {
    if !a.is_finite() {
        return 0.0;
    }
    let mut r = a.rem_euclid(2.0 * PI);
    if r > PI {
        r -= 2.0 * PI;
    }
    r
}

/// Whether segments p1-p2 and q1-q2 intersect (touching counts).
pub fn segments_intersect(p1: Point2, p2: Point2, q1: Point2, q2: Point2) -> bool {
    fn orient(a: Point2, b: Point2, c: Point2) -> f64 {
        (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
    }
    fn on_segment(a: Point2, b: Point2, c: Point2) -> bool {
        c.x >= a.x.min(b.x) - 1e-12
            && c.x <= a.x.max(b.x) + 1e-12
            && c.y >= a.y.min(b.y) - 1e-12
            && c.y <= a.y.max(b.y) + 1e-12
    }
    let d1 = orient(q1, q2, p1);
    let d2 = orient(q1, q2, p2);
    let d3 = orient(p1, p2, q1);
    let d4 = orient(p1, p2, q2);
    if ((d1 > 0.0 && d2 < 0.0) || (d1 < 0.0 && d2 > 0.0)) && ((d3 > 0.0 && d4 < 0.0) || (d3 < 0.0 && d4 > 0.0)) {
        return true;
    }
    (d1 == 0.0 && on_segment(q1, q2, p1))
        || (d2 == 0.0 && on_segment(q1, q2, p2))
        || (d3 == 0.0 && on_segment(p1, p2, q1))
        || (d4 == 0.0 && on_segment(p1, p2, q2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_wrap() {
        assert!((normalize_angle(3.0 * PI) - PI).abs() < 1e-9);
        assert!((normalize_angle(-PI / 2.0) + PI / 2.0).abs() < 1e-9);
        assert_eq!(normalize_angle(f64::INFINITY), 0.0);
    }

    #[test]
    fn local_frame_and_bearing() {
        let robot = Pose2::new(1.0, 1.0, PI / 2.0);
        let p = Point2::new(1.0, 3.0);
        let local = robot.to_local(p);
        assert!((local.x - 2.0).abs() < 1e-9 && local.y.abs() < 1e-9);
        assert!(robot.relative_bearing(p).abs() < 1e-9);
        assert!((robot.relative_bearing(Point2::new(0.0, 1.0)) - PI / 2.0).abs() < 1e-9);
    }

    #[test]
    fn step_towards_stops_at_target() {
        let a = Point2::new(0.0, 0.0);
        let b = Point2::new(3.0, 4.0);
        assert_eq!(a.step_towards(b, 10.0), b);
        let s = a.step_towards(b, 1.0);
        assert!((s.distance(a) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn segment_intersection() {
        let o = Point2::new(0.0, 0.0);
        assert!(segments_intersect(o, Point2::new(2.0, 2.0), Point2::new(0.0, 2.0), Point2::new(2.0, 0.0)));
        assert!(!segments_intersect(o, Point2::new(1.0, 0.0), Point2::new(0.0, 1.0), Point2::new(1.0, 1.0)));
        assert!(segments_intersect(o, Point2::new(2.0, 0.0), Point2::new(1.0, 0.0), Point2::new(1.0, 1.0)));
    }
}
