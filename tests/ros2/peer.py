"""The ROS 2 side of arbor's node tests: a real rclpy node that plays the robot around arbor.

- a base: integrates `geometry_msgs/Twist` on cmd_vel and drives toward `goal_pose` at 1 m/s,
  publishing `nav_msgs/Odometry` at 20 Hz (what a robot's base driver and Nav2 would do);
- a camera: publishes a real photograph as `sensor_msgs/Image` (rgb8) + `CameraInfo` at 5 Hz;
- a skill server: an `arbor_msgs/action/ExecuteSkill` action server that answers every call
  (success unless the skill is `fail_me`), records what it was asked;
- a mission: sends one goal (`std_msgs/String`) and follows arbor's status to the end.

Prints one JSON line with everything observed, for the Rust test to check; exits 0 when the
status reached an end (succeeded/failed/halted), 3 on timeout. With --interrupt-pid it sends
SIGINT to arbor (started by the test, by its PID) while the goal runs.
    python3 peer.py --goal-file G --goal-topic T --status-topic S --image RAW --image-size WxH --timeout 60
"""

import argparse
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSDurabilityPolicy, qos_profile_sensor_data

from arbor_msgs.action import ExecuteSkill
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray


def load_rgb(path, size):
    """Raw rgb8 pixels (the Rust test decodes the photo and writes them), `size` = "WxH"."""
    w, h = (int(v) for v in size.split("x"))
    img = np.fromfile(path, dtype=np.uint8)
    assert img.size == w * h * 3, (path, img.size, size)
    return img.reshape(h, w, 3)


class Peer(Node):
    def __init__(self, args):
        super().__init__("arbor_test_peer")
        self.args = args
        self.lock = threading.Lock()
        self.x, self.y, self.yaw = 0.0, 0.0, 0.0
        self.goal = None
        self.wz = 0.0
        self.goal_poses = []
        self.cmd_vel_turns = 0
        self.skill_calls = []
        self.cancelled = []
        self.statuses = []
        self.markers = []
        self.done = threading.Event()
        # Runs that ended (succeeded/failed); goals that ended, with a run or with an error (a
        # plan refused): `done` is set when every goal sent has ended.
        self.finished = 0
        self.ended = 0
        self.expected_runs = max(1, len(args.goal_file))
        latched = QoSProfile(depth=10, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
        self.create_subscription(PoseStamped, args.goal_pose_topic, self.on_goal_pose, 10)
        self.create_subscription(Twist, args.cmd_vel_topic, self.on_cmd_vel, 10)
        self.create_subscription(String, args.status_topic, self.on_status, latched)
        self.create_subscription(MarkerArray, args.entities_topic, self.on_markers, 10)
        self.odom_pub = self.create_publisher(Odometry, args.odom_topic, 10)
        self.image_pub = self.create_publisher(Image, args.image_topic, qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, args.camera_info_topic, 10)
        self.goal_pub = self.create_publisher(String, args.goal_topic, 10)
        self.server = ActionServer(
            self,
            ExecuteSkill,
            args.skill_action,
            execute_callback=self.execute,
            goal_callback=lambda g: GoalResponse.ACCEPT,
            cancel_callback=self.on_cancel,
        )
        self.image = load_rgb(args.image, args.image_size) if args.image else None
        # The camera's view once the first goal has ended (a face walks in, say).
        self.image_later = load_rgb(args.image_later, args.image_later_size) if args.image_later else None
        self.create_timer(0.05, self.step_base)
        if self.image is not None:
            self.create_timer(0.2, self.send_image)
        if args.clock_rate > 0:
            # A simulator's /clock: simulated time runs clock_rate x wall time, from 1000 s.
            self.clock_pub = self.create_publisher(Clock, "/clock", 10)
            self.clock_start = time.time()
            self.create_timer(0.01, self.send_clock)

    def send_clock(self):
        t = 1000.0 + self.args.clock_rate * (time.time() - self.clock_start)
        msg = Clock()
        msg.clock.sec = int(t)
        msg.clock.nanosec = int((t - int(t)) * 1e9)
        self.clock_pub.publish(msg)

    def on_goal_pose(self, msg):
        with self.lock:
            self.goal = (msg.pose.position.x, msg.pose.position.y)
            self.goal_poses.append([round(msg.pose.position.x, 3), round(msg.pose.position.y, 3), msg.header.frame_id])

    def on_cmd_vel(self, msg):
        with self.lock:
            self.wz = msg.angular.z
            if abs(msg.angular.z) > 1e-6:
                self.cmd_vel_turns += 1

    def on_status(self, msg):
        s = json.loads(msg.data)
        with self.lock:
            self.statuses.append(s)
        if s.get("state") in ("succeeded", "failed") and "outcome" in s:
            with self.lock:
                self.finished += 1
                self.ended += 1
                if self.ended >= self.expected_runs:
                    self.done.set()
        elif s.get("state") == "error" and "goal" in s:
            with self.lock:
                self.ended += 1
                if self.ended >= self.expected_runs:
                    self.done.set()
        if s.get("state") == "halted":
            self.done.set()

    def on_markers(self, msg):
        texts = [m.text for m in msg.markers if m.text]
        if texts:
            with self.lock:
                self.markers.append({"frame": msg.markers[-1].header.frame_id, "texts": texts})

    def on_cancel(self, goal_handle):
        with self.lock:
            self.cancelled.append(goal_handle.request.skill)
        return CancelResponse.ACCEPT

    def execute(self, goal_handle):
        req = goal_handle.request
        with self.lock:
            self.skill_calls.append({"skill": req.skill, "node": req.node, "params": json.loads(req.params_json)})
        fb = ExecuteSkill.Feedback()
        fb.state = f"doing {req.skill}"
        goal_handle.publish_feedback(fb)
        # Skills take a little robot time; `say` of "hold" runs until cancelled.
        hold = req.skill == "say" and json.loads(req.params_json).get("text") == "hold"
        t_end = time.time() + (3600 if hold else 0.3)
        while time.time() < t_end:
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return ExecuteSkill.Result(success=False, message=f"{req.skill} cancelled")
            time.sleep(0.02)
        res = ExecuteSkill.Result()
        if req.skill == "fail_me":
            goal_handle.abort()
            res.success, res.message = False, "told to fail"
        else:
            goal_handle.succeed()
            res.success, res.message = True, f"{req.skill} done ({req.params_json})"
        return res

    def step_base(self):
        dt = 0.05
        with self.lock:
            if self.goal is not None:
                dx, dy = self.goal[0] - self.x, self.goal[1] - self.y
                d = math.hypot(dx, dy)
                if d > 0.02:
                    k = min(1.0 * dt, d) / d
                    self.x += dx * k
                    self.y += dy * k
                    self.yaw = math.atan2(dy, dx)
            self.yaw += self.wz * dt
            x, y, yaw = self.x, self.y, self.yaw
        o = Odometry()
        o.header.stamp = self.get_clock().now().to_msg()
        o.header.frame_id = "map"
        o.pose.pose.position.x, o.pose.pose.position.y = x, y
        o.pose.pose.orientation.z, o.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        self.odom_pub.publish(o)

    def send_image(self):
        with self.lock:
            later = self.image_later is not None and self.ended >= 1
        image = self.image_later if later else self.image
        h, w, _ = image.shape
        msg = Image()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "camera"
        msg.height, msg.width, msg.encoding, msg.step = h, w, "rgb8", w * 3
        msg.data = image.tobytes()
        self.image_pub.publish(msg)
        info = CameraInfo()
        info.header = msg.header
        info.width, info.height = w, h
        f = w / 2 / math.tan(math.radians(60) / 2)
        info.k = [f, 0.0, w / 2, 0.0, f, h / 2, 0.0, 0.0, 1.0]
        self.info_pub.publish(info)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--goal-file", action="append", default=[],
                    help="a goal to send (none: another sends it, e.g. the fleet); several: each after the "
                    "previous one's run ended")
    ap.add_argument("--repeat-first", type=int, default=0,
                    help="send the first goal again this many times, 0.3 s apart (a duplicated request)")
    ap.add_argument("--goal-topic", default="arbor/goal")
    ap.add_argument("--status-topic", default="arbor/status")
    ap.add_argument("--entities-topic", default="arbor/entities")
    ap.add_argument("--odom-topic", default="odom")
    ap.add_argument("--cmd-vel-topic", default="cmd_vel")
    ap.add_argument("--goal-pose-topic", default="goal_pose")
    ap.add_argument("--image-topic", default="camera/image_raw")
    ap.add_argument("--camera-info-topic", default="camera/camera_info")
    ap.add_argument("--skill-action", default="arbor/execute_skill")
    ap.add_argument("--image", default="", help="raw rgb8 pixels")
    ap.add_argument("--image-size", default="", help="WxH of --image")
    ap.add_argument("--image-later", default="", help="raw rgb8 pixels sent instead once the first goal ended")
    ap.add_argument("--image-later-size", default="", help="WxH of --image-later")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--linger", type=float, default=0.0, help="seconds to stay up after the last goal ended")
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds between the node's subscription and the first goal (its first frames)")
    ap.add_argument("--clock-rate", type=float, default=0.0, help="publish /clock at this multiple of real time")
    ap.add_argument("--interrupt-pid", type=int, default=0, help="SIGINT this process (arbor, started by the test) ...")
    ap.add_argument("--interrupt-after", type=float, default=3.0, help="... this long after the goal was sent")
    args = ap.parse_args()
    rclpy.init()
    peer = Peer(args)
    ex = MultiThreadedExecutor(num_threads=4)
    ex.add_node(peer)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    goals = [open(f).read() for f in args.goal_file]
    deadline = time.time() + args.timeout
    # Wait until arbor's node has subscribed to the goal topic (discovery), then send the goal.
    while peer.goal_pub.get_subscription_count() == 0 and time.time() < deadline:
        time.sleep(0.05)
    # The node's first frames (perception) before the goal.
    time.sleep(args.settle)
    for k, goal in enumerate(goals):
        while k > 0 and time.time() < deadline:
            with peer.lock:
                if peer.ended >= k:
                    break
            time.sleep(0.05)
        peer.goal_pub.publish(String(data=goal))
        for _ in range(args.repeat_first if k == 0 else 0):
            time.sleep(0.3)
            peer.goal_pub.publish(String(data=goal))
    if args.interrupt_pid:
        time.sleep(args.interrupt_after)
        os.kill(args.interrupt_pid, signal.SIGINT)
    ok = peer.done.wait(max(0.0, deadline - time.time()))
    # Keep the robot up (camera, base) a little after the last goal ended.
    time.sleep(args.linger)
    time.sleep(0.3)
    with peer.lock:
        report = {
            "finished": ok,
            "runs_finished": peer.finished,
            "errors": [s for s in peer.statuses if s.get("state") == "error"],
            "final": peer.statuses[-1] if peer.statuses else None,
            "states": sorted({s.get("state", "") for s in peer.statuses}),
            "skill_calls": peer.skill_calls,
            "cancelled": peer.cancelled,
            "goal_poses": peer.goal_poses,
            "cmd_vel_turns": peer.cmd_vel_turns,
            "pose": [round(peer.x, 3), round(peer.y, 3)],
            "markers": peer.markers[-1] if peer.markers else None,
            "skills_seen": sorted({k["skill"] for s in peer.statuses for k in s.get("skills", [])}),
        }
    print(json.dumps(report), flush=True)
    ex.shutdown(timeout_sec=1)
    peer.destroy_node()
    rclpy.try_shutdown()
    sys.exit(0 if ok else 3)


if __name__ == "__main__":
    main()
