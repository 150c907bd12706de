"""Reads arbor's launch files without ROS (no `launch` package here): compiles them and pulls
out, from their syntax tree, what they set on each Node: package, executable, name, arguments,
parameter names (dict literals), parameter files (the last piece of a PathJoinSubstitution),
remappings, and the default of each DeclareLaunchArgument. Prints JSON.
    python3 check_launch.py launch/arbor.launch.py launch/sim.launch.py
"""

import ast
import json
import sys


def const(node):
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "PathJoinSubstitution":
        parts = node.args[0].elts if node.args and isinstance(node.args[0], ast.List) else []
        return {"path": [const(p) for p in parts]}
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "LaunchConfiguration":
        return {"arg": const(node.args[0])}
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "FindPackageShare":
        return {"share": const(node.args[0])}
    if isinstance(node, ast.Name):
        return {"var": node.id}
    return {"expr": ast.unparse(node)}


def kw(call, name):
    for k in call.keywords:
        if k.arg == name:
            return k.value
    return None


def main():
    out = {}
    for path in sys.argv[1:]:
        source = open(path).read()
        compile(source, path, "exec")  # a SyntaxError fails the check (nothing is written)
        tree = ast.parse(source, path)
        # Variables assigned once (share = FindPackageShare("arbor")): resolve them in paths.
        names = {}
        for n in ast.walk(tree):
            if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
                names[n.targets[0].id] = n.value
        nodes, args = [], {}
        for n in ast.walk(tree):
            if not isinstance(n, ast.Call):
                continue
            fname = getattr(n.func, "id", "")
            if fname == "DeclareLaunchArgument":
                d = kw(n, "default_value")
                args[const(n.args[0])] = const(d) if d is not None else None
            if fname != "Node":
                continue
            entry = {k: const(kw(n, k)) for k in ("package", "executable", "name") if kw(n, k) is not None}
            a = kw(n, "arguments")
            entry["arguments"] = [const(x) for x in a.elts] if isinstance(a, ast.List) else []
            entry["parameters"], entry["param_files"] = [], []
            p = kw(n, "parameters")
            for item in p.elts if isinstance(p, ast.List) else []:
                if isinstance(item, ast.Name) and item.id in names:
                    item = names[item.id]
                if isinstance(item, ast.Dict):
                    for k, v in zip(item.keys, item.values):
                        entry["parameters"].append(const(k))
                        c = const(v)
                        if isinstance(c, dict) and "path" in c:
                            entry["param_files"].append(c["path"][-1])
                elif isinstance(item, ast.Call):
                    c = const(item)
                    if isinstance(c, dict) and "path" in c:
                        entry["param_files"].append(c["path"][-1])
                    elif isinstance(c, dict) and "arg" in c:
                        entry["param_files"].append(c)
            r = kw(n, "remappings")
            entry["remappings"] = [const(t.elts[0]) for t in r.elts] if isinstance(r, ast.List) else []
            nodes.append(entry)
        # A params file given as a launch argument: its default.
        for entry in nodes:
            files = []
            for f in entry["param_files"]:
                if isinstance(f, dict):
                    d = args.get(f["arg"])
                    f = d["path"][-1] if isinstance(d, dict) and "path" in d else f
                files.append(f)
            entry["param_files"] = files
        out[path] = {"nodes": nodes, "arguments": args}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
