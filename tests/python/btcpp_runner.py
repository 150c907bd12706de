#!/usr/bin/env python3
"""Ticks behavior trees in BehaviorTree.CPP itself (PyPI `behaviortreepy`, BT.CPP 4.8.2 compiled
in) with scripted test leaves and prints one canonical trace per tree: the reference side of
arbor's differential conformance test (behaviors/tests/btcpp_conformance.rs).

Input (stdin): one JSON case per line:
  {"id": 3, "xml": "<root ...>", "ticks": 12, "halts": [5],
   "leaves": {"a1": {"kind": "action", "script": [[2, "SUCCESS"], [0, "FAILURE"]]},
              "c2": {"kind": "condition", "script": ["SUCCESS", "FAILURE"]}},
   "btlog": "/tmp/x.btlog"}          # optional: also write BT.CPP's FileLogger2 log there
Output (stdout): one JSON line per case: {"id": 3, "trace": ["tick 1", "n0 IDLE->RUNNING",
  "start a1", ..., "root RUNNING"], "error": null}

Test leaves (registered as `TestAction`, a StatefulActionNode, and `TestCondition`; each node is
told apart by its `name`): an action's script is a list of activations [running ticks, result]
used in turn (cyclically); a condition's script is a list of results, one per evaluation.
Transitions come from BT.CPP's own StdCoutLogger (C++ printf on fd 1), leaf events from the
callbacks, written to the same descriptor so the order between the two is the real one.
"""

import gc
import json
import os
import re
import sys
import tempfile
import time

import behaviortreepy as bt

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(r"^\[[0-9.]+\]: (\S+)\s+(\w+) -> (\w+)$")


class Leaves:
    """The scripted leaves of the case being run."""

    def __init__(self, fd):
        self.fd = fd
        self.case = {}
        self.state = {}

    def reset(self, leaves):
        self.case = leaves
        self.state = {name: {"act": 0, "left": 0, "result": "SUCCESS", "eval": 0} for name in leaves}

    def emit(self, text):
        if self.fd is not None:
            os.write(self.fd, (text + "\n").encode())

    def on_start(self, node):
        name = node.name()
        self.emit(f"start {name}")
        st, script = self.state[name], self.case[name]["script"]
        left, result = script[st["act"] % len(script)]
        st["act"] += 1
        st["left"], st["result"] = left, result
        return self.step(st)

    def on_running(self, node):
        name = node.name()
        self.emit(f"poll {name}")
        st = self.state[name]
        st["left"] -= 1
        return self.step(st)

    @staticmethod
    def step(st):
        if st["left"] > 0:
            return bt.NodeStatus.RUNNING
        return getattr(bt.NodeStatus, st["result"])

    def on_halted(self, node):
        self.emit(f"halt {node.name()}")

    def condition(self, node):
        name = node.name()
        st, script = self.state[name], self.case[name]["script"]
        result = script[st["eval"] % len(script)]
        st["eval"] += 1
        self.emit(f"check {name} {result}")
        return getattr(bt.NodeStatus, result)


def run_case(case, leaves, out_fd, capture_path):
    leaves.reset(case["leaves"])
    factory = bt.BehaviorTreeFactory()
    factory.register_simple_stateful_action("TestAction", leaves.on_start, leaves.on_running, leaves.on_halted)
    factory.register_simple_condition("TestCondition", leaves.condition)
    error = None
    lines = []
    # Everything the tree prints (transitions, leaf events) goes to the capture file.
    cap = os.open(capture_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(cap, 1)
    os.close(cap)
    leaves.fd = 1
    tree = logger = file_logger = None
    try:
        tree = factory.create_tree_from_text(case["xml"])
        logger = bt.StdCoutLogger(tree)
        file_logger = bt.FileLogger(tree, case["btlog"]) if case.get("btlog") else None
        halts = set(case.get("halts", []))
        for k in range(1, case["ticks"] + 1):
            leaves.emit(f"tick {k}")
            if k in halts:
                leaves.emit("halt_tree")
                tree.halt_tree()
            status = tree.tick_exactly_once()
            leaves.emit(f"root {status.name}")
    except Exception as e:  # BT.CPP's exceptions: part of the trace
        error = str(e).splitlines()[0] if str(e) else type(e).__name__
    finally:
        # The tree halts itself when destroyed: that is not part of the run.
        leaves.fd = None
        if logger is not None:
            logger.set_enabled(False)
        if file_logger is not None:
            # FileLogger2's writer thread drains its queue every 10 ms and drops what is still
            # queued when the logger is destroyed: give it time to write the last transitions.
            time.sleep(0.1)
            file_logger.flush()
            file_logger.set_enabled(False)
        del logger, file_logger, tree
        gc.collect()
    sys.stdout.flush()
    os.dup2(out_fd, 1)
    with open(capture_path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            text = ANSI.sub("", raw.rstrip("\n"))
            m = LINE.match(text)
            lines.append(f"{m.group(1)} {m.group(2)}->{m.group(3)}" if m else text)
    if error is not None:
        lines.append("error")
    return {"id": case["id"], "trace": lines, "error": error}


def main():
    out_fd = os.dup(1)
    leaves = Leaves(1)
    with tempfile.TemporaryDirectory() as tmp:
        capture = os.path.join(tmp, "capture.txt")
        for line in sys.stdin:
            if not line.strip():
                continue
            result = run_case(json.loads(line), leaves, out_fd, capture)
            os.write(out_fd, (json.dumps(result) + "\n").encode())


if __name__ == "__main__":
    main()
