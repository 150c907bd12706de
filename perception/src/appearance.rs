//! Who is this? Appearance descriptors for re-identifying enrolled people: a colour
//! histogram of the clothing below the face plus a normalised grey patch of the face, compared
//! against a gallery built from enrollment frames. This is classic appearance re-id (no face
//! embedding network ships in any registry package): it tells apart people who dress
//! differently and look different, it is not biometric identification.

use crate::detect::BBox;
use image::RgbImage;
use serde::{Deserialize, Serialize};

const BINS: usize = 4;
const PATCH: usize = 12;
const HIST_LEN: usize = BINS * BINS * BINS;

/// A descriptor: an L1-normalised clothing histogram followed by a zero-mean, unit-norm face patch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Appearance(pub Vec<f32>);

impl Appearance {
    /// Describes the person whose face is `face` in `image`. None when the face box is
    /// degenerate or the clothing region falls outside the image.
    pub fn of(image: &RgbImage, face: &BBox) -> Option<Appearance> {
        let (w, h) = (image.width() as f32, image.height() as f32);
        let fw = face.width();
        let fh = face.height();
        if fw < 4.0 || fh < 4.0 {
            return None;
        }
        let (cx, _) = face.center();
        // Clothing: a region below the chin, as wide as the shoulders.
        let torso = BBox::new(
            (cx - 1.0 * fw).max(0.0),
            (face.y2 + 0.4 * fh).min(h),
            (cx + 1.0 * fw).min(w),
            (face.y2 + 2.2 * fh).min(h),
        );
        if torso.width() < 2.0 || torso.height() < 2.0 {
            return None;
        }
        let mut hist = [0f32; HIST_LEN];
        let mut n = 0f32;
        for y in torso.y1 as u32..torso.y2 as u32 {
            for x in torso.x1 as u32..torso.x2 as u32 {
                let p = image.get_pixel(x, y).0;
                let bin = |c: u8| usize::from(c) * BINS / 256;
                hist[(bin(p[0]) * BINS + bin(p[1])) * BINS + bin(p[2])] += 1.0;
                n += 1.0;
            }
        }
        let mut v: Vec<f32> = hist.iter().map(|c| c / n.max(1.0)).collect();
        // Face patch, grey, sampled from the inner face (landmark-free, centre 70%).
        let mut patch = [0f32; PATCH * PATCH];
        for (i, px) in patch.iter_mut().enumerate() {
            let (gx, gy) = ((i % PATCH) as f32 + 0.5, (i / PATCH) as f32 + 0.5);
            let x = (face.x1 + fw * (0.15 + 0.7 * gx / PATCH as f32)).clamp(0.0, w - 1.0) as u32;
            let y = (face.y1 + fh * (0.15 + 0.7 * gy / PATCH as f32)).clamp(0.0, h - 1.0) as u32;
            let p = image.get_pixel(x, y).0;
            *px = 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2]);
        }
        let mean = patch.iter().sum::<f32>() / patch.len() as f32;
        patch.iter_mut().for_each(|p| *p -= mean);
        let norm = patch.iter().map(|p| p * p).sum::<f32>().sqrt().max(1e-6);
        v.extend(patch.iter().map(|p| p / norm));
        Some(Appearance(v))
    }

    /// Similarity in [0, 1]: 0.7 x histogram intersection + 0.3 x face-patch correlation
    /// (clipped at 0).
    pub fn similarity(&self, other: &Appearance) -> f32 {
        if self.0.len() != other.0.len() || self.0.len() < HIST_LEN {
            return 0.0;
        }
        let hist: f32 = self.0[..HIST_LEN].iter().zip(&other.0[..HIST_LEN]).map(|(a, b)| a.min(*b)).sum();
        let face: f32 = self.0[HIST_LEN..].iter().zip(&other.0[HIST_LEN..]).map(|(a, b)| a * b).sum();
        0.7 * hist + 0.3 * face.max(0.0)
    }
}

/// Enrolled people: name and descriptor(s).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Gallery {
    pub people: Vec<(String, Appearance)>,
    /// A match needs at least this similarity...
    pub min_similarity: f32,
    /// ...and this much more than the runner-up.
    pub margin: f32,
}

impl Gallery {
    pub fn new() -> Self {
        Self { people: Vec::new(), min_similarity: 0.6, margin: 0.05 }
    }

    pub fn enroll(&mut self, name: impl Into<String>, a: Appearance) {
        self.people.push((name.into(), a));
    }

    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }

    /// The enrolled person this descriptor matches, if one does clearly.
    pub fn identify(&self, a: &Appearance) -> Option<(&str, f32)> {
        let mut best: Option<(&str, f32)> = None;
        let mut second = 0f32;
        for (name, g) in &self.people {
            let s = a.similarity(g);
            match best {
                Some((n, b)) if n == name.as_str() => {
                    if s > b {
                        best = Some((name, s));
                    }
                }
                Some((_, b)) if s > b => {
                    second = b;
                    best = Some((name, s));
                }
                Some(_) => second = second.max(s),
                None => best = Some((name, s)),
            }
        }
        best.filter(|(_, s)| *s >= self.min_similarity && *s - second >= self.margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(shirt: [u8; 3], face_level: u8) -> RgbImage {
        let mut img = RgbImage::from_pixel(100, 120, image::Rgb([200, 200, 200]));
        for y in 20..44 {
            for x in 40..60 {
                let v = face_level.wrapping_add(((x * 7 + y * 3) % 40) as u8);
                img.put_pixel(x, y, image::Rgb([v, v, v]));
            }
        }
        for y in 50..110 {
            for x in 25..75 {
                img.put_pixel(x, y, image::Rgb(shirt));
            }
        }
        img
    }

    #[test]
    fn identifies_by_clothes_and_face_and_refuses_strangers() {
        let face = BBox::new(40.0, 20.0, 60.0, 44.0);
        let mut g = Gallery::new();
        g.enroll("alice", Appearance::of(&person([200, 30, 30], 80), &face).unwrap());
        g.enroll("bob", Appearance::of(&person([30, 30, 200], 120), &face).unwrap());
        let probe = Appearance::of(&person([200, 30, 30], 80), &BBox::new(41.0, 21.0, 60.0, 44.0)).unwrap();
        assert_eq!(g.identify(&probe).map(|m| m.0), Some("alice"));
        let stranger = Appearance::of(&person([30, 200, 30], 10), &face).unwrap();
        assert_eq!(g.identify(&stranger), None);
        assert!(Appearance::of(&person([0, 0, 0], 0), &BBox::new(0.0, 0.0, 2.0, 2.0)).is_none());
    }
}
