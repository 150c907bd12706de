"""Real typed ROS 2 servers for arbor's declared-skill test (rclpy): a NavigateToPose-shaped
action server (nav2_msgs from tests/ros2/interfaces), test_msgs' Fibonacci action, std_srvs'
SetBool and Trigger services, a std_msgs/String topic a condition reads, and a subscriber of the
topic a skill publishes on. Records what arrives; prints a JSON report when the dock is asked
for (the tree's last skill) or at the timeout."""

import argparse
import json
import threading
import time

import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from test_msgs.action import Fibonacci
from nav2_msgs.action import NavigateToPose


class Servers(Node):
    def __init__(self):
        super().__init__("skill_servers")
        self.lock = threading.Lock()
        self.report = {"navigate": [], "fibonacci": [], "rejected": 0, "cancelled": [], "announced": [],
                       "set_bool": [], "docked": False}
        self.done = threading.Event()
        group = ReentrantCallbackGroup()
        ActionServer(self, NavigateToPose, "navigate_to_pose", self.navigate,
                     cancel_callback=lambda _g: CancelResponse.ACCEPT, callback_group=group)
        ActionServer(self, Fibonacci, "fibonacci", self.fibonacci, goal_callback=self.fib_goal,
                     callback_group=group)
        self.create_service(SetBool, "gripper/enable", self.set_bool, callback_group=group)
        self.create_service(Trigger, "dock", self.dock, callback_group=group)
        self.held = self.create_publisher(String, "gripper/held", 10)
        self.create_timer(0.1, lambda: self.held.publish(String(data="cup")))
        self.create_subscription(String, "announce", self.announce, 10, callback_group=group)

    def navigate(self, handle):
        g = handle.request
        p = g.pose.pose
        with self.lock:
            self.report["navigate"].append({
                "x": p.position.x, "y": p.position.y, "qz": p.orientation.z, "qw": p.orientation.w,
                "frame": g.pose.header.frame_id, "behavior_tree": g.behavior_tree})
        result = NavigateToPose.Result()
        # "slow" takes 30 s unless cancelled; anything else arrives in 0.3 s.
        end = time.time() + (30.0 if g.behavior_tree == "slow" else 0.3)
        while time.time() < end:
            if handle.is_cancel_requested:
                with self.lock:
                    self.report["cancelled"].append(g.behavior_tree)
                handle.canceled()
                result.error_code = 0
                return result
            time.sleep(0.02)
        result.error_code = 0
        handle.succeed()
        return result

    def fib_goal(self, goal):
        if goal.order > 20:
            with self.lock:
                self.report["rejected"] += 1
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def fibonacci(self, handle):
        n = handle.request.order
        seq = [0, 1]
        while len(seq) < n:
            seq.append(seq[-1] + seq[-2])
        with self.lock:
            self.report["fibonacci"].append(n)
        handle.succeed()
        r = Fibonacci.Result()
        r.sequence = seq[:n]
        return r

    def set_bool(self, req, resp):
        with self.lock:
            self.report["set_bool"].append(req.data)
        resp.success = req.data
        resp.message = "enabled" if req.data else "the gripper refuses to be disabled"
        return resp

    def dock(self, _req, resp):
        with self.lock:
            self.report["docked"] = True
        resp.success = True
        resp.message = "docked"
        self.done.set()
        return resp

    def announce(self, msg):
        with self.lock:
            self.report["announced"].append(msg.data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    rclpy.init()
    node = Servers()
    ex = MultiThreadedExecutor(num_threads=4)
    ex.add_node(node)
    th = threading.Thread(target=ex.spin, daemon=True)
    th.start()
    print("ready", flush=True)
    finished = node.done.wait(args.timeout)
    time.sleep(0.5)
    with node.lock:
        report = dict(node.report, finished=finished)
    print(json.dumps(report), flush=True)
    ex.shutdown()
    node.destroy_node()
    rclpy.try_shutdown()


if __name__ == "__main__":
    main()
