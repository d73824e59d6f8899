"""Stand-in for Houdini's ``hou`` module: only the calls Envy's cache runner uses (contract tests only).

A "HIP file" here is JSON::

    {"nodes": {"/obj/sim/filecache1": {
        "parms": {"seed": 0, "sopoutput": "$HIP/cache/smoke.$F4.bgeo.sc", "execute": null, "t": [0, 0, 0]},
        "keyframes": ["seed"],
        "cook": "write"}}}

``parms`` maps names to values (a list is a parameter tuple, null a button).
``cook`` says what pressing ``execute`` does: "write" writes the file named
by ``sopoutput`` (or ``file``) at frame 1, holding every parameter's raw value
and each ``set`` call, so a test can see exactly what arrived; "fail" raises
``OperationFailed``; "error" leaves an error on the node and writes nothing;
"wait" writes like "write" once a file named ``release`` exists beside the
HIP file (a cache that is still running when a test kills its agent).
"""

import json
import os
import re
import time

_scene = {"path": None, "nodes": {}}


class Error(Exception):
    def instanceMessage(self):
        return str(self)


class OperationFailed(Error):
    pass


class _HipFile:
    def load(self, file_name, suppress_save_prompt=False, ignore_load_warnings=False):
        try:
            with open(file_name, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as exc:
            raise OperationFailed("Could not load %s: %s" % (file_name, exc)) from exc
        _scene["path"] = os.path.abspath(file_name)
        _scene["nodes"] = {path: Node(path, spec) for path, spec in data.get("nodes", {}).items()}
        os.environ["HIP"] = os.path.dirname(_scene["path"])

    def path(self):
        return _scene["path"]


hipFile = _HipFile()


class Parm:
    def __init__(self, node, name):
        self._node = node
        self._name = name

    def name(self):
        return self._name

    def eval(self):
        return self._node._values[self._name]

    def unexpandedString(self):
        return str(self._node._values[self._name])

    def evalAsString(self):
        return _expand(str(self._node._values[self._name]))

    def set(self, value):
        current = self._node._values[self._name]
        if isinstance(current, list):
            raise TypeError("use parmTuple() for a tuple")
        if self._name in self._node._keyframes:
            raise OperationFailed("stand-in: %s is animated; set() would only change a key" % self._name)
        self._node._values[self._name] = value
        self._node._calls.append({"parm": self._name, "value": value, "type": type(value).__name__})

    def keyframes(self):
        return ["key"] if self._name in self._node._keyframes else []

    def deleteAllKeyframes(self):
        self._node._keyframes.discard(self._name)

    def pressButton(self):
        self._node._press(self._name)


class ParmTuple:
    def __init__(self, node, name):
        self._node = node
        self._name = name

    def __iter__(self):
        return iter([_TupleComponent(self, i) for i in range(len(self._node._values[self._name]))])

    def eval(self):
        return tuple(self._node._values[self._name])

    def set(self, values):
        if len(values) != len(self._node._values[self._name]):
            raise OperationFailed("stand-in: %s takes %d values" % (self._name, len(self._node._values[self._name])))
        self._node._values[self._name] = list(values)
        self._node._calls.append({"parm": self._name, "value": list(values), "type": type(values).__name__})


class _TupleComponent:
    def __init__(self, tup, index):
        self._tuple = tup
        self._index = index

    def keyframes(self):
        return []

    def deleteAllKeyframes(self):
        pass


class Node:
    def __init__(self, path, spec):
        self._path = path
        self._values = dict(spec.get("parms", {}))
        self._keyframes = set(spec.get("keyframes", []))
        self._cook = spec.get("cook", "write")
        self._errors = []
        self._calls = []

    def path(self):
        return self._path

    def parm(self, name):
        if name in self._values and not isinstance(self._values[name], list):
            return Parm(self, name)
        return None

    def parmTuple(self, name):
        if name in self._values and isinstance(self._values[name], list):
            return ParmTuple(self, name)
        return None

    def errors(self):
        return tuple(self._errors)

    def _press(self, button):
        if button != "execute":
            return
        if self._cook == "fail":
            raise OperationFailed("stand-in cook of %s failed" % self._path)
        if self._cook == "error":
            self._errors.append("Stand-in error: cannot write the cache")
            return
        if self._cook == "wait":
            release = os.path.join(os.path.dirname(_scene["path"]), "release")
            while not os.path.exists(release):
                time.sleep(0.05)
        out = self.parm("sopoutput") or self.parm("file")
        target = out.evalAsString()
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        with open(target, "w", encoding="utf-8") as f:
            json.dump({"parms": self._values, "set_calls": self._calls}, f)


def node(path):
    return _scene["nodes"].get(path)


def parm(path):
    node_path, _, name = path.rpartition("/")
    found = node(node_path)
    return found.parm(name) if found else None


def parmTuple(path):
    node_path, _, name = path.rpartition("/")
    found = node(node_path)
    return found.parmTuple(name) if found else None


def _expand(text):
    """$HIP and $F/$F4 at frame 1, as Houdini would expand them at frame 1."""
    text = re.sub(r"\$\{?HIP\}?(?![A-Za-z0-9_])", lambda m: os.environ.get("HIP", ""), text)
    return re.sub(r"\$\{?F(\d*)\}?", lambda m: "%0*d" % (int(m.group(1) or 1), 1), text)
