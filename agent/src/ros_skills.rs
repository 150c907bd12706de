//! Declared skills on ROS 2 (feature `ros2`): each skill of a manifest with a `ros2:` binding
//! runs through r2r's untyped clients, with no Rust per message type. An action sends a goal
//! built from its template (typed by `ros_iface` from the interface definition, so r2r never
//! sees JSON of a wrong shape), maps result fields to output ports and judges success by the
//! action's status and the manifest's rule; halting cancels the goal on the server. A service
//! call does the same with its request and response; a publish sends one message; a condition
//! reads the latest message on its topic. Every call is a task on the node's tokio `LocalSet`,
//! polled by the tick like the ExecuteSkill goals of `ros_robot.rs`.

use crate::ros_iface::{Field, Interfaces, to_value};
use anyhow::{Context, Result, anyhow};
use arbor_behaviors::manifest::{RosBinding, Rule, SkillManifest};
use arbor_behaviors::{CallId, Params, SkillCall, SkillStatus};
use futures::StreamExt;
use serde_json::Value as J;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

enum Client {
    Action(r2r::ActionClientUntyped),
    Service(r2r::ClientUntyped),
    Publish(r2r::PublisherUntyped),
    Topic,
}

struct Bound {
    binding: RosBinding,
    client: Client,
    /// The interface's sections (goal/result, request/response, message) with their fields.
    parts: BTreeMap<&'static str, Vec<Field>>,
    /// Server, service or topic name.
    name: String,
    /// Whether the server has been seen (actions and services).
    up: Rc<RefCell<bool>>,
}

struct Call {
    result: Rc<RefCell<Option<(SkillStatus, Params)>>>,
    task: tokio::task::JoinHandle<()>,
    goal: Rc<RefCell<Option<r2r::ActionClientGoalUntyped>>>,
    skill: String,
}

/// A task to start once the node's `LocalSet` runs (server availability, topic watchers).
pub type Watcher = Pin<Box<dyn Future<Output = ()>>>;

/// How long a goal or request may wait for the server's answer to being sent.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The manifest's ROS-bound skills of one node.
pub struct Declared {
    skills: BTreeMap<String, Bound>,
    ifaces: Interfaces,
    places: BTreeMap<String, [f64; 2]>,
    frame: String,
    running: BTreeMap<CallId, Call>,
    outputs: BTreeMap<CallId, Params>,
    latest: Rc<RefCell<BTreeMap<String, J>>>,
}

impl Declared {
    /// Creates a client, publisher or subscription per bound skill (checked against the
    /// interface definitions before: `Interfaces::check_manifest`). The watchers must be spawned
    /// on the node's `LocalSet`.
    pub fn create(
        node: &mut r2r::Node,
        manifest: &SkillManifest,
        mut ifaces: Interfaces,
        places: BTreeMap<String, [f64; 2]>,
        frame: String,
        qos: r2r::QosProfile,
    ) -> Result<(Self, Vec<Watcher>)> {
        let latest: Rc<RefCell<BTreeMap<String, J>>> = Rc::default();
        let mut skills = BTreeMap::new();
        let mut watchers: Vec<Watcher> = Vec::new();
        // One subscription per topic, however many conditions read it.
        let mut subscribed = std::collections::BTreeSet::new();
        for s in &manifest.skills {
            let Some(b) = &s.ros2 else { continue };
            if s.builtin.is_some() || matches!(b, RosBinding::ExecuteSkill { .. }) {
                continue;
            }
            let what = || format!("skill '{}' ({})", s.spec.name, b.interface());
            let parts = ifaces.parts(b.interface()).with_context(what)?;
            let up = Rc::new(RefCell::new(false));
            let (client, name) = match b {
                RosBinding::Action { interface, server, .. } => {
                    let c = node.create_action_client_untyped(server, interface).with_context(what)?;
                    let wait = r2r::Node::is_available(&c).map_err(|e| anyhow!("{}: {e}", what()))?;
                    let u = up.clone();
                    watchers.push(Box::pin(async move { *u.borrow_mut() = wait.await.is_ok() }));
                    (Client::Action(c), server.clone())
                }
                RosBinding::Service { interface, service, .. } => {
                    let c = node
                        .create_client_untyped(service, interface, r2r::QosProfile::services_default())
                        .with_context(what)?;
                    let wait = r2r::Node::is_available(&c).map_err(|e| anyhow!("{}: {e}", what()))?;
                    let u = up.clone();
                    watchers.push(Box::pin(async move { *u.borrow_mut() = wait.await.is_ok() }));
                    (Client::Service(c), service.clone())
                }
                RosBinding::Publish { interface, topic, .. } => (
                    Client::Publish(node.create_publisher_untyped(topic, interface, qos.clone()).with_context(what)?),
                    topic.clone(),
                ),
                RosBinding::Topic { interface, topic, .. } => {
                    if subscribed.insert(topic.clone()) {
                        let mut sub = node.subscribe_untyped(topic, interface, qos.clone()).with_context(what)?;
                        let (l, t) = (latest.clone(), topic.clone());
                        watchers.push(Box::pin(async move {
                            while let Some(m) = sub.next().await {
                                if let Ok(m) = m {
                                    l.borrow_mut().insert(t.clone(), m);
                                }
                            }
                        }));
                    }
                    (Client::Topic, topic.clone())
                }
                RosBinding::ExecuteSkill { .. } => continue,
            };
            skills.insert(s.spec.name.clone(), Bound { binding: b.clone(), client, parts, name, up });
        }
        let d = Self { skills, ifaces, places, frame, running: BTreeMap::new(), outputs: BTreeMap::new(), latest };
        Ok((d, watchers))
    }

    pub fn has(&self, skill: &str) -> bool {
        self.skills.contains_key(skill)
    }

    pub fn start(&mut self, call: &SkillCall<'_>) -> SkillStatus {
        let Some(b) = self.skills.get(call.skill) else {
            return SkillStatus::Failure(format!("'{}' has no ROS 2 binding", call.skill));
        };
        let (section, template) = match &b.binding {
            RosBinding::Action { goal, .. } => ("goal", goal),
            RosBinding::Service { request, .. } => ("request", request),
            RosBinding::Publish { message, .. } => ("message", message),
            RosBinding::Topic { .. } | RosBinding::ExecuteSkill { .. } => {
                return SkillStatus::Failure(format!("'{}' is a condition", call.skill));
            }
        };
        let fields = b.parts.get(section).cloned().unwrap_or_default();
        let msg = match self.ifaces.build(&fields, template, call.params, &self.places, &self.frame) {
            Ok(m) => m,
            Err(e) => return SkillStatus::Failure(format!("{}: building the {section}: {e:#}", call.skill)),
        };
        let skill = call.skill.to_string();
        let result: Rc<RefCell<Option<(SkillStatus, Params)>>> = Rc::default();
        let goal_handle: Rc<RefCell<Option<r2r::ActionClientGoalUntyped>>> = Rc::default();
        let task = match (&b.client, &b.binding) {
            (Client::Publish(p), _) => {
                return match p.publish(msg) {
                    Ok(()) => SkillStatus::Success(format!("published on {}", b.name)),
                    Err(e) => SkillStatus::Failure(format!("publishing on {} failed: {e}", b.name)),
                };
            }
            (Client::Action(c), RosBinding::Action { result: outs, success, .. }) => {
                if !*b.up.borrow() {
                    return SkillStatus::Failure(format!(
                        "no action server answers on '{}' ({})",
                        b.name,
                        b.binding.interface()
                    ));
                }
                let req = match c.send_goal_request(msg) {
                    Ok(r) => r,
                    Err(e) => return SkillStatus::Failure(format!("sending the goal to {} failed: {e}", b.name)),
                };
                let (r, h, server) = (result.clone(), goal_handle.clone(), b.name.clone());
                let (outs, success) = (outs.clone(), success.clone());
                tokio::task::spawn_local(async move {
                    let answer = match tokio::time::timeout(ACCEPT_TIMEOUT, req).await {
                        Err(_) => {
                            Err(format!("{server} did not answer the goal within {} s", ACCEPT_TIMEOUT.as_secs()))
                        }
                        Ok(Err(r2r::Error::RCL_RET_ACTION_GOAL_REJECTED)) => {
                            Err(format!("{server} rejected the goal (ROS 2 actions carry no reason for a rejection)"))
                        }
                        Ok(Err(e)) => Err(format!("{server}: {e}")),
                        Ok(Ok((goal, result, _feedback))) => {
                            *h.borrow_mut() = Some(goal);
                            match result.await {
                                Ok((status, Ok(msg))) => Ok((status, msg)),
                                Ok((status, Err(e))) => Err(format!("{server} ended {status:?} without a result: {e}")),
                                Err(e) => Err(format!("{server}: no result: {e}")),
                            }
                        }
                    };
                    let done = match answer {
                        Err(why) => (SkillStatus::Failure(why), Params::new()),
                        Ok((status, msg)) => {
                            let ok_status = status == r2r::GoalStatus::Succeeded;
                            judge(
                                &skill,
                                ok_status,
                                &format!("the goal ended {status:?}"),
                                &msg,
                                success.as_ref(),
                                &outs,
                            )
                        }
                    };
                    *r.borrow_mut() = Some(done);
                })
            }
            (Client::Service(c), RosBinding::Service { response: outs, success, .. }) => {
                if !*b.up.borrow() {
                    return SkillStatus::Failure(format!(
                        "no service server answers on '{}' ({})",
                        b.name,
                        b.binding.interface()
                    ));
                }
                let req = match c.request(msg) {
                    Ok(r) => r,
                    Err(e) => return SkillStatus::Failure(format!("calling {} failed: {e}", b.name)),
                };
                let (r, server) = (result.clone(), b.name.clone());
                let (outs, success) = (outs.clone(), success.clone());
                tokio::task::spawn_local(async move {
                    let done = match tokio::time::timeout(ACCEPT_TIMEOUT * 3, req).await {
                        Err(_) => (SkillStatus::Failure(format!("{server} did not answer within 30 s")), Params::new()),
                        Ok(Ok(Ok(msg))) => judge(&skill, true, "", &msg, success.as_ref(), &outs),
                        Ok(Ok(Err(e)) | Err(e)) => (SkillStatus::Failure(format!("{server}: {e}")), Params::new()),
                    };
                    *r.borrow_mut() = Some(done);
                })
            }
            _ => return SkillStatus::Failure(format!("'{}': binding and client disagree", call.skill)),
        };
        self.running.insert(call.id, Call { result, task, goal: goal_handle, skill: call.skill.to_string() });
        self.poll(call.id)
    }

    pub fn poll(&mut self, id: CallId) -> SkillStatus {
        let Some(c) = self.running.get(&id) else {
            return SkillStatus::Failure(format!("call {id} is not running"));
        };
        let done = c.result.borrow_mut().take();
        match done {
            None => SkillStatus::Running,
            Some((status, outs)) => {
                self.running.remove(&id);
                if !outs.is_empty() {
                    self.outputs.insert(id, outs);
                }
                status
            }
        }
    }

    /// Cancels the goal on the server (the request goes out now) and drops the call's task.
    pub fn halt(&mut self, id: CallId) {
        self.outputs.remove(&id);
        if let Some(c) = self.running.remove(&id) {
            if let Some(goal) = c.goal.borrow().as_ref()
                && let Err(e) = goal.cancel()
            {
                eprintln!("arbor: cancelling {} failed: {e}", c.skill);
            }
            c.task.abort();
        }
    }

    pub fn take_outputs(&mut self, id: CallId) -> Params {
        self.outputs.remove(&id).unwrap_or_default()
    }

    /// A topic-bound condition: the rule over the latest message (placeholders in the rule's
    /// value are the call's parameters). `None`: the skill is not topic-bound.
    pub fn check(&self, call: &SkillCall<'_>) -> Option<SkillStatus> {
        let b = self.skills.get(call.skill)?;
        let RosBinding::Topic { rule, topic, .. } = &b.binding else { return None };
        let latest = self.latest.borrow();
        let Some(msg) = latest.get(topic) else {
            return Some(SkillStatus::Failure(format!("no message on {topic} yet")));
        };
        let rule = substituted(rule, call.params);
        Some(match rule.holds(msg) {
            Ok(true) => SkillStatus::Success(format!("{rule} on {topic}")),
            Ok(false) => SkillStatus::Failure(format!("{rule} does not hold on {topic}")),
            Err(e) => SkillStatus::Failure(format!("{topic}: {e}")),
        })
    }
}

fn substituted(rule: &Rule, params: &Params) -> Rule {
    let mut r = rule.clone();
    if let J::String(s) = &r.value {
        r.value = J::String(arbor_behaviors::manifest::substitute(s, params));
    }
    r
}

/// A finished call's verdict: the server's status, then the manifest's success rule, and the
/// output ports from the result fields.
fn judge(
    skill: &str,
    ok_status: bool,
    status_text: &str,
    msg: &J,
    success: Option<&Rule>,
    outs: &BTreeMap<String, String>,
) -> (SkillStatus, Params) {
    let outputs: Params = outs
        .iter()
        .filter_map(|(port, path)| arbor_behaviors::manifest::field_at(msg, path).map(|v| (port.clone(), to_value(v))))
        .collect();
    let reason = || {
        msg.get("error_msg")
            .or_else(|| msg.get("message"))
            .and_then(J::as_str)
            .filter(|s| !s.is_empty())
            .map(|s| format!(": {s}"))
            .unwrap_or_default()
    };
    if !ok_status {
        return (SkillStatus::Failure(format!("{skill}: {status_text}{}", reason())), outputs);
    }
    match success.map(|r| r.holds(msg)) {
        None | Some(Ok(true)) => (SkillStatus::Success(format!("{skill} succeeded")), outputs),
        Some(Ok(false)) => {
            let r = success.map(ToString::to_string).unwrap_or_default();
            let got = success
                .and_then(|r| arbor_behaviors::manifest::field_at(msg, &r.field))
                .map(|v| format!(" ({v})"))
                .unwrap_or_default();
            (SkillStatus::Failure(format!("{skill}: {r} does not hold{got}{}", reason())), outputs)
        }
        Some(Err(e)) => (SkillStatus::Failure(format!("{skill}: {e}")), outputs),
    }
}
