//! Path planning: an occupancy grid built from the walls (inflated by the robot's radius),
//! A* over it (8-connected), and string-pulling so the robot drives straight where it can.

use arbor_core::Point2;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A wall segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wall {
    pub a: Point2,
    pub b: Point2,
}

/// Distance from point `p` to segment a-b.
pub fn point_segment_distance(p: Point2, a: Point2, b: Point2) -> f64 {
    let ab = b.vector() - a.vector();
    let len2 = ab.norm_squared();
    if len2 == 0.0 {
        return p.distance(a);
    }
    let t = ((p.vector() - a.vector()).dot(&ab) / len2).clamp(0.0, 1.0);
    Point2::from_vector(a.vector() + ab * t).distance(p)
}

/// Distance between segments p1-p2 and q1-q2 (0 when they cross).
pub fn segment_distance(p1: Point2, p2: Point2, q1: Point2, q2: Point2) -> f64 {
    if arbor_core::geometry::segments_intersect(p1, p2, q1, q2) {
        return 0.0;
    }
    point_segment_distance(p1, q1, q2)
        .min(point_segment_distance(p2, q1, q2))
        .min(point_segment_distance(q1, p1, p2))
        .min(point_segment_distance(q2, p1, p2))
}

#[derive(Debug, Clone)]
pub struct Grid {
    width: usize,
    height: usize,
    resolution: f64,
    blocked: Vec<bool>,
    walls: Vec<Wall>,
    clearance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Open {
    f: u64,
    g: u64,
    idx: usize,
}

impl Ord for Open {
    fn cmp(&self, other: &Self) -> Ordering {
        // Min-heap on f, then on g (deeper first), then on index: fully deterministic.
        other.f.cmp(&self.f).then_with(|| self.g.cmp(&other.g)).then_with(|| other.idx.cmp(&self.idx))
    }
}
impl PartialOrd for Open {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Grid {
    /// Builds the grid for a map of `size` metres with the given walls (the outer boundary is
    /// added), blocking every cell closer than `clearance` to a wall.
    pub fn new(size: [f64; 2], resolution: f64, walls: &[Wall], clearance: f64) -> Self {
        let width = (size[0] / resolution).ceil().max(1.0) as usize;
        let height = (size[1] / resolution).ceil().max(1.0) as usize;
        let (w, h) = (size[0], size[1]);
        let mut all = walls.to_vec();
        let c = [Point2::new(0.0, 0.0), Point2::new(w, 0.0), Point2::new(w, h), Point2::new(0.0, h)];
        for i in 0..4 {
            all.push(Wall { a: c[i], b: c[(i + 1) % 4] });
        }
        let mut blocked = vec![false; width * height];
        for y in 0..height {
            for x in 0..width {
                let p = Point2::new((x as f64 + 0.5) * resolution, (y as f64 + 0.5) * resolution);
                blocked[y * width + x] = all.iter().any(|wall| point_segment_distance(p, wall.a, wall.b) < clearance);
            }
        }
        Self { width, height, resolution, blocked, walls: all, clearance }
    }

    pub fn walls(&self) -> &[Wall] {
        &self.walls
    }

    fn cell(&self, p: Point2) -> Option<(usize, usize)> {
        if !(p.x.is_finite() && p.y.is_finite()) || p.x < 0.0 || p.y < 0.0 {
            return None;
        }
        let x = (p.x / self.resolution) as usize;
        let y = (p.y / self.resolution) as usize;
        (x < self.width && y < self.height).then_some((x, y))
    }

    fn center(&self, idx: usize) -> Point2 {
        let (x, y) = (idx % self.width, idx / self.width);
        Point2::new((x as f64 + 0.5) * self.resolution, (y as f64 + 0.5) * self.resolution)
    }

    /// Whether a robot can be at `p` without touching a wall.
    pub fn is_free(&self, p: Point2) -> bool {
        self.cell(p).is_some() && self.walls.iter().all(|w| point_segment_distance(p, w.a, w.b) >= self.clearance)
    }

    /// Whether the robot can drive straight from `a` to `b`.
    pub fn segment_free(&self, a: Point2, b: Point2) -> bool {
        self.walls.iter().all(|w| segment_distance(a, b, w.a, w.b) >= self.clearance)
    }

    /// The nearest free cell centre to `p` (searching outward), for goals next to a wall.
    pub fn nearest_free(&self, p: Point2) -> Option<Point2> {
        if self.is_free(p) {
            return Some(p);
        }
        let (cx, cy) = self.cell(p)?;
        for r in 1..(self.width.max(self.height) as i64) {
            let mut best: Option<(f64, usize)> = None;
            for dy in -r..=r {
                for dx in -r..=r {
                    if dx.abs() != r && dy.abs() != r {
                        continue;
                    }
                    let (x, y) = (cx as i64 + dx, cy as i64 + dy);
                    if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
                        continue;
                    }
                    let idx = y as usize * self.width + x as usize;
                    if !self.blocked[idx] {
                        let d = self.center(idx).distance(p);
                        if best.is_none_or(|(bd, bi)| d < bd || (d == bd && idx < bi)) {
                            best = Some((d, idx));
                        }
                    }
                }
            }
            if let Some((_, idx)) = best {
                return Some(self.center(idx));
            }
        }
        None
    }

    /// A collision-free path from `start` to `goal` (both included), or `None`.
    pub fn plan(&self, start: Point2, goal: Point2) -> Option<Vec<Point2>> {
        let goal = self.nearest_free(goal)?;
        if self.segment_free(start, goal) {
            return Some(vec![start, goal]);
        }
        let s = self.cell(start)?;
        let g = self.cell(goal)?;
        let (s, g) = (s.1 * self.width + s.0, g.1 * self.width + g.0);
        let n = self.width * self.height;
        let mut cost = vec![u64::MAX; n];
        let mut parent = vec![usize::MAX; n];
        let mut heap = BinaryHeap::new();
        // Integer costs (millimetre-ish units) keep the search deterministic.
        let h = |i: usize| -> u64 {
            let (ax, ay) = ((i % self.width) as i64, (i / self.width) as i64);
            let (bx, by) = ((g % self.width) as i64, (g / self.width) as i64);
            let (dx, dy) = ((ax - bx).unsigned_abs(), (ay - by).unsigned_abs());
            1000 * dx.max(dy) + 414 * dx.min(dy)
        };
        cost[s] = 0;
        heap.push(Open { f: h(s), g: 0, idx: s });
        while let Some(Open { g: gc, idx, .. }) = heap.pop() {
            if idx == g {
                break;
            }
            if gc > cost[idx] {
                continue;
            }
            let (x, y) = ((idx % self.width) as i64, (idx / self.width) as i64);
            for (dx, dy, step) in [
                (1, 0, 1000),
                (-1, 0, 1000),
                (0, 1, 1000),
                (0, -1, 1000),
                (1, 1, 1414),
                (1, -1, 1414),
                (-1, 1, 1414),
                (-1, -1, 1414),
            ] {
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= self.width as i64 || ny >= self.height as i64 {
                    continue;
                }
                let ni = ny as usize * self.width + nx as usize;
                if self.blocked[ni] && ni != g {
                    continue;
                }
                // No corner cutting between two blocked cells.
                if dx != 0 && dy != 0 {
                    let a = y as usize * self.width + nx as usize;
                    let b = ny as usize * self.width + x as usize;
                    if self.blocked[a] || self.blocked[b] {
                        continue;
                    }
                }
                let nc = gc + step;
                if nc < cost[ni] {
                    cost[ni] = nc;
                    parent[ni] = idx;
                    heap.push(Open { f: nc + h(ni), g: nc, idx: ni });
                }
            }
        }
        if cost[g] == u64::MAX {
            return None;
        }
        let mut cells = vec![g];
        let mut cur = g;
        while cur != s {
            cur = parent[cur];
            if cur == usize::MAX {
                return None;
            }
            cells.push(cur);
        }
        cells.reverse();
        let mut raw: Vec<Point2> = Vec::with_capacity(cells.len() + 1);
        raw.push(start);
        raw.extend(cells.iter().skip(1).map(|&c| self.center(c)));
        if let Some(last) = raw.last_mut() {
            *last = goal;
        }
        Some(self.smooth(&raw))
    }

    /// String-pulling: keep only the points needed to stay clear of the walls.
    fn smooth(&self, raw: &[Point2]) -> Vec<Point2> {
        let mut out = Vec::new();
        let mut i = 0;
        out.push(raw[0]);
        while i < raw.len() - 1 {
            let mut j = raw.len() - 1;
            while j > i + 1 && !self.segment_free(raw[i], raw[j]) {
                j -= 1;
            }
            out.push(raw[j]);
            i = j;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_rooms() -> Grid {
        // A wall at x = 5 from y = 0 to 4 and from 5 to 10: a 1 m door at y in (4, 5).
        let walls = [
            Wall { a: Point2::new(5.0, 0.0), b: Point2::new(5.0, 4.0) },
            Wall { a: Point2::new(5.0, 5.0), b: Point2::new(5.0, 10.0) },
        ];
        Grid::new([10.0, 10.0], 0.1, &walls, 0.3)
    }

    #[test]
    fn plans_through_the_door() {
        let g = two_rooms();
        let path = g.plan(Point2::new(2.0, 8.0), Point2::new(8.0, 8.0)).unwrap();
        assert!(path.len() >= 3, "{path:?}");
        for w in path.windows(2) {
            assert!(g.segment_free(w[0], w[1]), "{path:?}");
        }
        assert!(path.iter().any(|p| p.y > 4.0 && p.y < 5.0 && (p.x - 5.0).abs() < 1.0), "goes via the door: {path:?}");
    }

    #[test]
    fn straight_line_when_clear_and_none_when_walled_off() {
        let g = two_rooms();
        assert_eq!(g.plan(Point2::new(1.0, 1.0), Point2::new(3.0, 3.0)).unwrap().len(), 2);
        let closed = Grid::new([10.0, 10.0], 0.1, &[Wall { a: Point2::new(5.0, 0.0), b: Point2::new(5.0, 10.0) }], 0.3);
        assert!(closed.plan(Point2::new(1.0, 1.0), Point2::new(8.0, 8.0)).is_none());
    }

    #[test]
    fn goal_next_to_wall_moves_to_free_space() {
        let g = two_rooms();
        let p = g.nearest_free(Point2::new(4.95, 2.0)).unwrap();
        assert!(g.is_free(p) && p.distance(Point2::new(4.95, 2.0)) < 0.5, "{p:?}");
    }
}
