//! Episodes for the synthetic dataset: a base scenario randomized by seed (who is there, where,
//! who looks at the robot, where the robot starts), a goal drawn from templates in several
//! phrasings, the success criteria that goal implies, and a scripted expert planner whose trees
//! the simulator then verifies. A perturbed expert (a plausible mistake: no attention check,
//! no approach, the wrong place) gives failed trees for the same prompt, so that preference
//! pairs exist.
//!
//! Over 600 lines: the goal families and the scripted expert's tree for each, one table.

use crate::scenario::{Criterion, Motion, Scenario};
use arbor_behaviors::tree::{Node, Tree};
use arbor_core::{Point2, Rng};

/// Which side of the train / held-out divide an episode is drawn from. Held-out episodes use
/// other people's names, other phrasings of the goals, and the map mirrored left to right, so
/// that nothing of them occurs in training data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Train,
    Heldout,
}

/// What the goal asks for, independent of its wording.
#[derive(Debug, Clone, PartialEq)]
pub enum GoalSpec {
    /// Photograph every person who looks at the robot, and nobody else.
    PhotographAttending,
    /// Photograph this person.
    Photograph(String),
    /// Drive to this place.
    GoTo(String),
    /// Photograph this person, then return to this place.
    PhotographThenGoTo(String, String),
}

impl GoalSpec {
    /// The scenario criteria that decide whether the goal was achieved.
    pub fn criteria(&self) -> Vec<Criterion> {
        match self {
            GoalSpec::PhotographAttending => {
                vec![Criterion::PhotographedAllAttending, Criterion::PhotographedNoneInattentive]
            }
            GoalSpec::Photograph(p) => vec![Criterion::Photographed(p.clone())],
            GoalSpec::GoTo(place) => vec![Criterion::EndsAt(place.clone())],
            GoalSpec::PhotographThenGoTo(p, place) => {
                vec![Criterion::Photographed(p.clone()), Criterion::EndsAt(place.clone())]
            }
        }
    }

    /// One phrasing of the goal for `split`, chosen by `rng`. Training goals are mostly
    /// composed ([`GoalSpec::compose`]: synonyms, clause order, politeness, casing, typos) so a
    /// model trained on them learns what matters (the names and places), not the templates;
    /// held-out goals keep their own fixed wordings, none of which training can produce.
    pub fn phrase(&self, rng: &mut Rng, split: Split) -> String {
        if split == Split::Train && rng.chance(0.75) {
            return self.compose(rng);
        }
        self.template(rng, split)
    }

    /// A composed training phrasing.
    pub fn compose(&self, rng: &mut Rng) -> String {
        fn pick<'a>(rng: &mut Rng, options: &[&'a str]) -> &'a str {
            options[((rng.uniform() * options.len() as f64) as usize).min(options.len() - 1)]
        }
        const PREFIX: [&str; 9] =
            ["", "", "please ", "could you ", "can you ", "robot, ", "hey, ", "I'd like you to ", "go ahead and "];
        const SUFFIX: [&str; 8] = ["", "", "", " please", " now", " for me", ", thanks", " when you can"];
        let mut text = String::new();
        // A composition that happens to contain a held-out wording is drawn again.
        for _ in 0..64 {
            let core = self.compose_core(rng);
            text = format!("{}{core}{}", pick(rng, &PREFIX), pick(rng, &SUFFIX));
            if !self.contains_heldout_wording(&text) {
                break;
            }
        }
        // Typos in the wording (never in a name or place: those must stay exact to be solvable).
        if rng.chance(0.2) {
            let keep: Vec<&str> = match self {
                GoalSpec::Photograph(p) => vec![p.as_str()],
                GoalSpec::GoTo(x) => vec![x.as_str()],
                GoalSpec::PhotographThenGoTo(p, x) => vec![p.as_str(), x.as_str()],
                GoalSpec::PhotographAttending => vec![],
            };
            let words: Vec<String> = text.split(' ').map(str::to_string).collect();
            let candidates: Vec<usize> = (0..words.len())
                .filter(|&i| {
                    let w = words[i].trim_matches(|c: char| !c.is_alphanumeric());
                    w.len() >= 4 && w.chars().all(|c| c.is_ascii_lowercase()) && !keep.iter().any(|k| k.contains(w))
                })
                .collect();
            if !candidates.is_empty() {
                let i = candidates[((rng.uniform() * candidates.len() as f64) as usize).min(candidates.len() - 1)];
                let mut chars: Vec<char> = words[i].chars().collect();
                let j = 1 + ((rng.uniform() * (chars.len() - 2) as f64) as usize).min(chars.len() - 3);
                match (rng.uniform() * 3.0) as u32 {
                    0 => chars.swap(j, j + 1),
                    1 => {
                        chars.remove(j);
                    }
                    _ => chars.insert(j, chars[j]),
                }
                let mut words = words;
                words[i] = chars.into_iter().collect();
                text = words.join(" ");
            }
        }
        if rng.chance(0.3) {
            let mut c = text.chars();
            text = c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default();
        }
        if rng.chance(0.25) {
            text.push(if rng.chance(0.5) { '.' } else { '!' });
        }
        text
    }

    /// The goal itself, composed from the phrase bank (no politeness, casing or typos).
    fn compose_core(&self, rng: &mut Rng) -> String {
        fn pick<'a>(rng: &mut Rng, options: &[&'a str]) -> &'a str {
            options[((rng.uniform() * options.len() as f64) as usize).min(options.len() - 1)]
        }
        // A phrase bank for the two verbs of these goals, composed from parts: verbs x nouns
        // x sentence frames. Held-out wordings (`template(.., Heldout)`) are whole sentences
        // that `compose` never produces (tested); their words do occur here in other
        // combinations, so the held-out suite measures new sentences, not new words.
        const PHOTO_VERB: [&str; 8] = ["take", "get", "grab", "snap", "capture", "shoot", "make", "record"];
        const PHOTO_NOUN: [&str; 9] = [
            "a photo",
            "a picture",
            "a snapshot",
            "an image",
            "a shot",
            "a portrait",
            "a pic",
            "a photograph",
            "a headshot",
        ];
        const PHOTO_FRAME: [&str; 14] = [
            "{v} {n} of {p}",
            "{v} {n} of {p}",
            "{v} {n} of {p}",
            "photograph {p}",
            "find {p} and {v} {n} of them",
            "I need {n} of {p}",
            "I'd like {n} of {p}",
            "{p} wants {n}",
            "{p} should get {n} taken",
            "we need {n} of {p}",
            "go and {v} {n} of {p}",
            "{v} {p}'s picture",
            "picture {p}",
            "your job: {v} {n} of {p}",
        ];
        const GO: [&str; 22] = [
            "go to the {x}",
            "drive to the {x}",
            "move to the {x}",
            "head to the {x}",
            "head over to the {x}",
            "navigate to the {x}",
            "proceed to the {x}",
            "return to the {x}",
            "go back to the {x}",
            "finish in the {x}",
            "end up in the {x}",
            "park in the {x}",
            "walk to the {x}",
            "roll over to the {x}",
            "get yourself to the {x}",
            "come to the {x}",
            "travel over to the {x}",
            "I need you in the {x}",
            "be in the {x}",
            "your destination is the {x}",
            "make it to the {x}",
            "get over to the {x}",
        ];
        const ATTENDING: [&str; 14] = [
            "photograph each person who looks at the robot",
            "take a picture of everyone who is looking at you",
            "photograph only the people looking at you",
            "snap a photo of every person facing you, skip the ones looking away",
            "take photos of the people who look at you and nobody else",
            "photograph all people who are looking toward the robot",
            "everyone looking at you gets a photo, the others do not",
            "take a picture of each attentive person",
            "photograph the people who face the robot, ignore the rest",
            "{v} {n} of every person who watches you",
            "{v} {n} of anyone who is paying attention to the robot",
            "only people who look at you get {n}",
            "{v} {n} of each person looking your way, nobody else",
            "whoever is watching the robot: {v} {n} of them",
        ];
        let photo_of = |rng: &mut Rng, p: &str| -> String {
            pick(rng, &PHOTO_FRAME)
                .replace("{v}", pick(rng, &PHOTO_VERB))
                .replace("{n}", pick(rng, &PHOTO_NOUN))
                .replace("{p}", p)
        };
        match self {
            GoalSpec::PhotographAttending => {
                pick(rng, &ATTENDING).replace("{v}", pick(rng, &PHOTO_VERB)).replace("{n}", pick(rng, &PHOTO_NOUN))
            }
            GoalSpec::Photograph(p) => photo_of(rng, p),
            GoalSpec::GoTo(x) => pick(rng, &GO).replace("{x}", x),
            GoalSpec::PhotographThenGoTo(p, x) => {
                let photo = photo_of(rng, p);
                let go = pick(rng, &GO).replace("{x}", x);
                match (rng.uniform() * 9.0) as u32 {
                    0 => format!("{photo}, then {go}"),
                    1 => format!("first {photo}, then {go}"),
                    2 => format!("{photo} and afterwards {go}"),
                    3 => format!("{go} after you have photographed {p}"),
                    4 => format!("{photo} and then {go}"),
                    5 => format!("{photo}. After that, {go}"),
                    6 => format!("before you {go}, {photo}"),
                    7 => format!("{go}, but {photo} first"),
                    _ => format!("{photo}; when that is done, {go}"),
                }
            }
        }
    }

    /// Whether `text` contains one of this goal's held-out wordings (case and punctuation aside).
    fn contains_heldout_wording(&self, text: &str) -> bool {
        let norm = |t: &str| -> String {
            t.to_lowercase().chars().filter(|c| c.is_alphanumeric() || *c == ' ').collect::<String>()
        };
        let text = norm(text);
        self.wordings(Split::Heldout).iter().any(|w| text.contains(norm(&self.fill(w)).trim()))
    }

    fn fill(&self, wording: &str) -> String {
        match self {
            GoalSpec::Photograph(p) => wording.replace("{p}", p),
            GoalSpec::GoTo(x) => wording.replace("{x}", x),
            GoalSpec::PhotographThenGoTo(p, x) => wording.replace("{p}", p).replace("{x}", x),
            GoalSpec::PhotographAttending => wording.to_string(),
        }
    }

    /// One of the fixed wordings of `split`.
    fn template(&self, rng: &mut Rng, split: Split) -> String {
        let options = self.wordings(split);
        let i = ((rng.uniform() * options.len() as f64) as usize).min(options.len() - 1);
        self.fill(options[i])
    }

    /// The fixed wordings of `split` (`{p}` a person, `{x}` a place).
    fn wordings(&self, split: Split) -> &'static [&'static str] {
        let train = split == Split::Train;
        match (self, train) {
            (GoalSpec::PhotographAttending, true) => &[
                "photograph each person who looks at the robot",
                "take a picture of everyone who is looking at you",
                "photograph the people who pay attention to the robot, and nobody else",
                "snap a photo of every person facing you, skip the ones looking away",
                "please take photos of all attentive people",
            ],
            (GoalSpec::PhotographAttending, false) => &[
                "capture an image of each person watching you",
                "only photograph people who are paying attention to you",
                "get pictures of whoever looks your way",
            ],
            (GoalSpec::Photograph(_), true) => &[
                "photograph {p}",
                "take a picture of {p}",
                "please get a photo of {p}",
                "find {p} and take their photo",
                "I need a picture of {p}",
            ],
            (GoalSpec::Photograph(_), false) => {
                &["capture an image of {p}", "could you shoot a portrait of {p}?", "{p} needs a photo taken"]
            }
            (GoalSpec::GoTo(_), true) => &[
                "go to the {x}",
                "drive to the {x}",
                "please move to the {x}",
                "head over to the {x}",
                "navigate to {x}",
            ],
            (GoalSpec::GoTo(_), false) => {
                &["make your way to the {x}", "travel to the {x} please", "I want you in the {x}"]
            }
            (GoalSpec::PhotographThenGoTo(..), true) => &[
                "photograph {p}, then go to the {x}",
                "take a picture of {p} and come back to the {x}",
                "find {p}, photograph them, and return to the {x}",
                "after you photograph {p}, head to the {x}",
            ],
            (GoalSpec::PhotographThenGoTo(..), false) => &[
                "capture an image of {p}, then make your way to the {x}",
                "once {p} is photographed, travel to the {x}",
            ],
        }
    }
}

/// Names people may get in randomized episodes.
const NAMES: [&str; 24] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory", "niaj", "olivia",
    "peggy", "rupert", "sybil", "trent", "victor", "walter", "yusuf", "zoe", "amara", "bilal", "chen",
];

/// Names only held-out episodes use.
const HELDOUT_NAMES: [&str; 12] =
    ["kwame", "lucia", "mateo", "noor", "oskar", "priya", "quinn", "rosa", "sven", "tariq", "uma", "xavier"];

/// Mirrors a scenario left to right (x -> width - x; headings reflected).
fn mirror(s: &mut Scenario) {
    let w = s.map.size[0];
    let fx = |x: f64| w - x;
    for r in &mut s.map.rooms {
        let (a, b) = (fx(r.max[0]), fx(r.min[0]));
        r.min[0] = a;
        r.max[0] = b;
    }
    for wall in &mut s.map.walls {
        wall[0][0] = fx(wall[0][0]);
        wall[1][0] = fx(wall[1][0]);
    }
    for p in &mut s.map.places {
        p.at[0] = fx(p.at[0]);
    }
    for o in &mut s.objects {
        o.at[0] = fx(o.at[0]);
    }
    for p in &mut s.people {
        p.pose[0] = fx(p.pose[0]);
        p.pose[2] = 180.0 - p.pose[2];
        if let Motion::Patrol { waypoints, .. } = &mut p.motion {
            for w in waypoints {
                w[0] = fx(w[0]);
            }
        }
    }
    s.robot.pose[0] = fx(s.robot.pose[0]);
    s.robot.pose[2] = 180.0 - s.robot.pose[2];
}

/// One generated episode.
#[derive(Debug, Clone)]
pub struct Episode {
    /// `ep000042`: stable across runs of the generator.
    pub id: String,
    pub seed: u64,
    pub goal: GoalSpec,
    pub goal_text: String,
    pub scenario: Scenario,
    /// The randomized scenario as YAML (what the run directory keeps).
    pub scenario_text: String,
}

fn room_point(rng: &mut Rng, min: [f64; 2], max: [f64; 2], margin: f64) -> Point2 {
    Point2::new(rng.range(min[0] + margin, max[0] - margin), rng.range(min[1] + margin, max[1] - margin))
}

/// The episode `index` of a generation with `base_seed`, from `base`.
pub fn episode(base: &Scenario, base_seed: u64, index: u64) -> Result<Episode, String> {
    episode_in(base, base_seed, index, Split::Train)
}

/// The episode `index` of a generation with `base_seed`, from `base`, on one side of the split.
pub fn episode_in(base: &Scenario, base_seed: u64, index: u64, split: Split) -> Result<Episode, String> {
    let salt = if split == Split::Train { 0 } else { 0x0048_454c_444f_5554 };
    let seed = Rng::seed_from_u64(base_seed ^ 0x9e37_79b9_7f4a_7c15 ^ salt).fork(index).next_u64();
    let mut rng = Rng::seed_from_u64(seed);
    let mut s = base.clone();
    if split == Split::Heldout {
        mirror(&mut s);
    }
    // People: new names, new places in a random room, random heading and attention.
    let mut names: Vec<&str> = if split == Split::Train { NAMES.to_vec() } else { HELDOUT_NAMES.to_vec() };
    if names.len() < s.people.len() {
        return Err(format!("scenario '{}' has more people than the name pool", base.name));
    }
    let rooms = s.map.rooms.clone();
    if rooms.is_empty() {
        return Err(format!("scenario '{}' has no rooms to place people in", base.name));
    }
    let mut taken: Vec<Point2> = Vec::new();
    for p in &mut s.people {
        let k = (rng.uniform() * names.len() as f64) as usize;
        p.name = names.remove(k.min(names.len() - 1)).to_string();
        p.attends_robot = rng.chance(0.6);
        if matches!(p.motion, Motion::Still) {
            let room = &rooms[((rng.uniform() * rooms.len() as f64) as usize).min(rooms.len() - 1)];
            let mut at = room_point(&mut rng, room.min, room.max, 0.8);
            for _ in 0..20 {
                if taken.iter().all(|q| q.distance(at) > 1.2) {
                    break;
                }
                at = room_point(&mut rng, room.min, room.max, 0.8);
            }
            taken.push(at);
            p.pose = [at.x, at.y, rng.range(-180.0, 180.0)];
        }
    }
    // Robot: a random start in the first room, away from people.
    let first = &rooms[0];
    let mut start = room_point(&mut rng, first.min, first.max, 0.8);
    for _ in 0..20 {
        if taken.iter().all(|q| q.distance(start) > 1.5) {
            break;
        }
        start = room_point(&mut rng, first.min, first.max, 0.8);
    }
    s.robot.pose = [start.x, start.y, rng.range(-180.0, 180.0)];
    // Goal.
    let people: Vec<String> = s.people.iter().map(|p| p.name.clone()).collect();
    let places = s.place_names();
    let any = |rng: &mut Rng, v: &[String]| v[((rng.uniform() * v.len() as f64) as usize).min(v.len() - 1)].clone();
    let roll = rng.uniform();
    let goal = if people.is_empty() || roll < 0.25 {
        if places.is_empty() {
            return Err(format!("scenario '{}' has neither people nor places to make goals of", base.name));
        }
        GoalSpec::GoTo(any(&mut rng, &places))
    } else if roll < 0.5 {
        GoalSpec::PhotographAttending
    } else if roll < 0.8 || places.is_empty() {
        GoalSpec::Photograph(any(&mut rng, &people))
    } else {
        GoalSpec::PhotographThenGoTo(any(&mut rng, &people), any(&mut rng, &places))
    };
    let goal_text = goal.phrase(&mut rng, split);
    s.goal = goal_text.clone();
    s.success = goal.criteria();
    let scenario_text = serde_yaml::to_string(&s).map_err(|e| e.to_string())?;
    let id = if split == Split::Train { format!("ep{index:06}") } else { format!("heldout{index:06}") };
    // Validate what was made, as any scenario file would be.
    let scenario =
        Scenario::parse(&scenario_text, &format!("{id} (generated from {})", base.name)).map_err(|e| e.to_string())?;
    Ok(Episode { id, seed, goal, goal_text, scenario, scenario_text })
}

fn leaf(id: &str, attrs: &[(&str, &str)]) -> Node {
    attrs.iter().fold(Node::new(id), |n, (k, v)| n.with_attr(k, v))
}

fn seq(children: Vec<Node>) -> Node {
    Node::new("Sequence").with_children(children)
}

/// The room (place) a person starts in, when the scenario has a place named after the room.
fn room_of(s: &Scenario, person: &str) -> Option<String> {
    let p = s.people.iter().find(|p| p.name == person)?;
    let room = s.room_at(Point2::new(p.pose[0], p.pose[1]))?;
    s.place_names().into_iter().find(|n| n == room)
}

/// Go to the person's room, find them (scan when not seen yet), approach and face them.
fn approach(s: &Scenario, person: &str) -> Vec<Node> {
    let mut v = Vec::new();
    if let Some(room) = room_of(s, person) {
        v.push(leaf("navigate_to", &[("target", &room)]));
    }
    v.push(Node::new("Fallback").with_children(vec![leaf("has_seen", &[("entity", person)]), leaf("scan", &[])]));
    v.push(leaf("navigate_to", &[("target", person)]));
    v.push(leaf("look_at", &[("entity", person)]));
    v
}

fn photo(person: &str) -> Node {
    Node::new("RetryUntilSuccessful").with_attr("num_attempts", "3").with_children(vec![seq(vec![
        leaf("look_at", &[("entity", person)]),
        leaf("capture_photo", &[("entity", person)]),
    ])])
}

fn attention_check(person: &str) -> Node {
    Node::new("RetryUntilSuccessful").with_attr("num_attempts", "4").with_children(vec![seq(vec![
        leaf("wait", &[("seconds", "0.5")]),
        leaf("is_attending", &[("entity", person)]),
    ])])
}

/// The scripted expert's tree for an episode.
pub fn expert(ep: &Episode) -> Tree {
    build(ep, false)
}

/// The expert with one plausible mistake, for failed examples of the same prompt.
pub fn perturbed(ep: &Episode) -> Tree {
    build(ep, true)
}

fn build(ep: &Episode, mistake: bool) -> Tree {
    let s = &ep.scenario;
    let root = match &ep.goal {
        GoalSpec::PhotographAttending => {
            let mut blocks: Vec<Node> = s
                .people
                .iter()
                .map(|p| {
                    let mut v = approach(s, &p.name);
                    if !mistake {
                        // The mistake: photograph everyone, attending or not.
                        v.push(attention_check(&p.name));
                    }
                    v.push(photo(&p.name));
                    Node::new("ForceSuccess").with_children(vec![seq(v)])
                })
                .collect();
            blocks.push(leaf("say", &[("text", "Thank you, photos are done.")]));
            seq(blocks)
        }
        GoalSpec::Photograph(p) => {
            // The mistake: shoot from where the robot stands, without finding the person.
            let mut v = if mistake { Vec::new() } else { approach(s, p) };
            v.push(photo(p));
            seq(v)
        }
        GoalSpec::GoTo(place) => {
            // The mistake: the first other place.
            let target = if mistake {
                s.place_names().into_iter().find(|n| n != place).unwrap_or_else(|| place.clone())
            } else {
                place.clone()
            };
            seq(vec![leaf("navigate_to", &[("target", &target)])])
        }
        GoalSpec::PhotographThenGoTo(p, place) => {
            let mut v = approach(s, p);
            v.push(photo(p));
            if !mistake {
                // The mistake: forget to return.
                v.push(leaf("navigate_to", &[("target", place)]));
            }
            seq(v)
        }
    };
    let name = if mistake { "perturbed_expert" } else { "expert" };
    Tree::single(name, Some(ep.goal_text.clone()), root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Scenario {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/photographer.yaml");
        Scenario::load(std::path::Path::new(path)).unwrap()
    }

    #[test]
    fn episodes_are_deterministic_valid_and_varied() {
        let b = base();
        let a = episode(&b, 7, 3).unwrap();
        let again = episode(&b, 7, 3).unwrap();
        assert_eq!(a.scenario_text, again.scenario_text);
        assert_eq!(a.goal_text, again.goal_text);
        let goals: std::collections::BTreeSet<String> = (0..40).map(|i| episode(&b, 7, i).unwrap().goal_text).collect();
        assert!(goals.len() > 15, "{goals:?}");
        let other = episode(&b, 8, 3).unwrap();
        assert_ne!(a.scenario_text, other.scenario_text);
    }

    #[test]
    fn heldout_episodes_share_nothing_with_training() {
        let b = base();
        let train: Vec<Episode> = (0..60).map(|i| episode(&b, 1, i).unwrap()).collect();
        let held: Vec<Episode> = (0..30).map(|i| episode_in(&b, 1, i, Split::Heldout).unwrap()).collect();
        let goals: std::collections::BTreeSet<&str> = train.iter().map(|e| e.goal_text.as_str()).collect();
        let names: std::collections::BTreeSet<&str> =
            train.iter().flat_map(|e| e.scenario.people.iter().map(|p| p.name.as_str())).collect();
        for h in &held {
            assert!(!goals.contains(h.goal_text.as_str()), "{}", h.goal_text);
            assert!(h.scenario.people.iter().all(|p| !names.contains(p.name.as_str())));
            assert_ne!(h.scenario.map.rooms[0].min, b.map.rooms[0].min, "mirrored layout");
        }
        // The expert still solves held-out episodes (the layout is valid and reachable).
        let lib = arbor_behaviors::NodeLibrary::with_skills(&crate::registry());
        for h in &held {
            expert(h).check("expert", &lib, Some(&h.scenario.vocabulary()), false).unwrap();
        }
    }

    #[test]
    fn composed_phrasings_vary_and_keep_names_and_places_exact() {
        let mut rng = Rng::seed_from_u64(5);
        let specs = [
            GoalSpec::Photograph("alice".into()),
            GoalSpec::GoTo("kitchen".into()),
            GoalSpec::PhotographThenGoTo("bob".into(), "office".into()),
            GoalSpec::PhotographAttending,
        ];
        for spec in &specs {
            let texts: std::collections::BTreeSet<String> = (0..200).map(|_| spec.compose(&mut rng)).collect();
            assert!(texts.len() > 60, "{spec:?}: only {} distinct phrasings", texts.len());
            for t in &texts {
                for needed in match spec {
                    GoalSpec::Photograph(p) => vec![p.as_str()],
                    GoalSpec::GoTo(x) => vec![x.as_str()],
                    GoalSpec::PhotographThenGoTo(p, x) => vec![p.as_str(), x.as_str()],
                    GoalSpec::PhotographAttending => vec![],
                } {
                    assert!(t.to_lowercase().contains(needed), "{t:?} lost {needed}");
                }
            }
        }
    }

    #[test]
    fn composed_phrasings_never_produce_a_held_out_wording() {
        let norm = |t: &str| -> String {
            t.to_lowercase().chars().filter(|c| c.is_alphanumeric() || *c == ' ').collect::<String>().trim().to_string()
        };
        let specs = [
            GoalSpec::Photograph("alice".into()),
            GoalSpec::GoTo("kitchen".into()),
            GoalSpec::PhotographThenGoTo("alice".into(), "kitchen".into()),
            GoalSpec::PhotographAttending,
        ];
        let mut rng = Rng::seed_from_u64(11);
        for spec in &specs {
            let held: std::collections::BTreeSet<String> =
                (0..400).map(|_| norm(&spec.template(&mut rng, Split::Heldout))).collect();
            assert!(held.len() >= 2, "{spec:?}");
            for _ in 0..20_000 {
                let t = norm(&spec.compose(&mut rng));
                // Politeness around a held-out core is still that wording.
                assert!(!held.iter().any(|h| t == *h || t.contains(h.as_str())), "{spec:?}: compose made {t:?}");
            }
        }
    }

    #[test]
    fn the_planners_grammar_can_write_every_expert_tree() {
        // What the planner decodes under (its default grammar for the episode's names) must be
        // able to write what the dataset teaches, for every goal family and both splits.
        use arbor_planner::{format, gbnf::Grammar, grammar, repair::vocabulary};
        let b = base();
        let registry = crate::registry();
        let lib = arbor_behaviors::NodeLibrary::with_skills(&registry);
        let mut families = std::collections::BTreeSet::new();
        for split in [Split::Train, Split::Heldout] {
            for i in 0..40 {
                let ep = episode_in(&b, 3, i, split).unwrap();
                families.insert(format!("{:?}", std::mem::discriminant(&ep.goal)));
                let cx = crate::planning::context(&ep.scenario);
                let g = grammar::generate(&registry, &vocabulary(&cx), &grammar::GrammarOptions::default());
                let g = Grammar::parse(&g).unwrap();
                let text = format::render(&expert(&ep), &lib).unwrap();
                assert!(g.accepts(&text), "{:?}: the grammar cannot write the expert's tree {text}", ep.goal);
            }
        }
        assert_eq!(families.len(), 4, "every goal family drawn");
    }

    #[test]
    fn expert_trees_check_against_the_episode() {
        let b = base();
        let lib = arbor_behaviors::NodeLibrary::with_skills(&crate::registry());
        for i in 0..30 {
            let ep = episode(&b, 1, i).unwrap();
            for t in [expert(&ep), perturbed(&ep)] {
                t.check("expert", &lib, Some(&ep.scenario.vocabulary()), false).unwrap();
            }
        }
    }
}
