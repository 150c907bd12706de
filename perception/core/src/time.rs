//! Time as the robot sees it. Logic never reads the wall clock: it is handed a [`Clock`].

use serde::{Deserialize, Serialize};
use std::fmt;

/// A point in simulation or robot time, in microseconds since the start of the run.
///
/// Integer microseconds keep records byte-identical across runs (no float drift in sums).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SimTime(pub u64);

impl SimTime {
    pub const ZERO: SimTime = SimTime(0);

    pub fn from_secs_f64(s: f64) -> Self {
        if s.is_finite() && s > 0.0 { SimTime((s * 1e6).round() as u64) } else { SimTime(0) }
    }

    pub fn from_millis(ms: u64) -> Self {
        SimTime(ms.saturating_mul(1000))
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    pub fn micros(self) -> u64 {
        self.0
    }

    pub fn saturating_sub(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(other.0))
    }

    pub fn plus(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}s", self.as_secs_f64())
    }
}

/// The source of "now" for everything that needs time. Injected, never global.
pub trait Clock {
    fn now(&self) -> SimTime;
}

/// A clock advanced explicitly by its owner (the simulator, replay, tests).
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: SimTime,
}

impl ManualClock {
    pub fn new(start: SimTime) -> Self {
        Self { now: start }
    }

    pub fn advance(&mut self, dt: SimTime) {
        self.now = self.now.plus(dt);
    }

    pub fn set(&mut self, t: SimTime) {
        self.now = t;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SimTime {
        self.now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        assert_eq!(SimTime::from_secs_f64(1.5).micros(), 1_500_000);
        assert_eq!(SimTime::from_secs_f64(-3.0), SimTime::ZERO);
        assert_eq!(SimTime::from_secs_f64(f64::NAN), SimTime::ZERO);
        assert_eq!(SimTime::from_millis(250).as_secs_f64(), 0.25);
        assert_eq!(SimTime(5).saturating_sub(SimTime(9)), SimTime::ZERO);
    }

    #[test]
    fn manual_clock_advances() {
        let mut c = ManualClock::default();
        c.advance(SimTime::from_millis(100));
        c.advance(SimTime::from_millis(100));
        assert_eq!(c.now(), SimTime::from_millis(200));
        assert_eq!(format!("{}", c.now()), "0.200s");
    }
}
