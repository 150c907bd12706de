//! What the planner gets from a scenario: the names the robot knows (its prior map and the
//! people it was told about) and a semantic check (every place a plan drives to is reachable).

use crate::nav::Grid;
use crate::scenario::Scenario;
use arbor_behaviors::planner::PlanContext;
use arbor_behaviors::tree::{Node, Tree};
use arbor_perception::Point2;

/// Places, people and objects named in the scenario: what the robot's memory holds at start.
pub fn context(s: &Scenario) -> PlanContext {
    PlanContext {
        places: s.place_names(),
        people: s.people.iter().map(|p| p.name.clone()).collect(),
        objects: s.objects.iter().map(|o| o.name.clone()).collect(),
        in_view: Vec::new(),
        recent_events: Vec::new(),
    }
}

/// A check that every `navigate_to` place in a tree can be reached from the robot's start.
pub fn reachability(s: &Scenario) -> impl Fn(&Tree) -> Result<(), String> + Sync + use<> {
    let start = s.robot_pose().position();
    let walls: Vec<crate::nav::Wall> = s
        .map
        .walls
        .iter()
        .map(|w| crate::nav::Wall { a: Point2::new(w[0][0], w[0][1]), b: Point2::new(w[1][0], w[1][1]) })
        .collect();
    let grid = Grid::new(s.map.size, s.map.resolution, &walls, s.robot.radius + 0.05);
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
                && grid.plan(start, *p).is_none()
            {
                return Err(format!("place '{t}' cannot be reached from the robot's start"));
            }
        }
        Ok(())
    }
}
