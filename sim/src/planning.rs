//! What the planner gets from a scenario: the names the robot knows (its prior map and the
//! people it was told about) and a semantic check (every place a plan drives to is reachable).

use crate::scenario::Scenario;
use arbor_behaviors::tree::{Node, Tree};
use arbor_planner::PlanContext;

/// Places, people and objects named in the scenario: what the robot's memory holds at start.
pub fn context(s: &Scenario) -> PlanContext {
    PlanContext {
        places: s.place_names(),
        people: s.people.iter().map(|p| p.name.clone()).collect(),
        objects: s.objects.iter().map(|o| o.name.clone()).collect(),
        in_view: Vec::new(),
        recent_events: Vec::new(),
        remembered: remembered_rooms(s),
        examples: Vec::new(),
    }
}

/// Where the robot last knew each person to be: the room of their pose in the scenario (what a
/// robot's memory holds about the people it was told of). The scripted expert drives to that
/// room first, so a planner must be told it to be able to write the same tree.
fn remembered_rooms(s: &Scenario) -> Vec<String> {
    s.people
        .iter()
        .filter_map(|p| {
            let room = s.room_at(arbor_core::Point2::new(p.pose[0], p.pose[1]))?;
            Some(format!("{} was last seen in the {room}", p.name))
        })
        .collect()
}

/// A check that every `navigate_to` place in a tree can be reached from the robot's start.
pub fn reachability(s: &Scenario) -> impl Fn(&Tree) -> Result<(), String> + Sync + use<> {
    // The world's own occupancy grid: the same one navigate_to plans on.
    let world = crate::World::new(s, 0);
    let start = world.robot_pose().position();
    let places = s.places();
    move |tree: &Tree| {
        fn walk(n: &Node, out: &mut Vec<String>) {
            if n.id == "navigate_to"
                && let Some(t) = n.attr("target")
            {
                out.push(t.to_string());
            }
            n.children.iter().for_each(|c| walk(c, out));
        }
        let mut targets = Vec::new();
        tree.trees.iter().for_each(|t| walk(&t.root, &mut targets));
        for t in targets {
            if let Some((_, p)) = places.iter().find(|(n, _)| *n == t)
                && !world.can_reach(start, *p)
            {
                return Err(format!("place '{t}' cannot be reached from the robot's start"));
            }
        }
        Ok(())
    }
}
