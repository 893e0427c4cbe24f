#!/usr/bin/env python3
"""Writes Claude Code transcripts for the import-transcripts benchmark:
120 sessions of 150 tool uses (Bash fn run, Read, Edit, Grep), assistant
text before each, results of 0.4-16 KB (5 % errors) -- ~171 MB.

usage: transcripts_gen.py DIR      then: call_monitor import-transcripts DIR
"""

import json
import os
import random
import sys
import uuid

random.seed(3)
root = os.path.join(sys.argv[1], "-home-dev-app")
os.makedirs(root, exist_ok=True)
total = 0
for s in range(120):
    sid = str(uuid.UUID(int=random.getrandbits(128)))
    path = os.path.join(root, f"{sid}.jsonl")
    t = 0

    def line(kind, content):
        global t
        t += 1500
        ts = "2026-11-%02dT%02d:%02d:%02d.%03dZ" % (
            1 + s % 28, (t // 3600000) % 24, (t // 60000) % 60, (t // 1000) % 60, t % 1000)
        return json.dumps({
            "type": kind, "sessionId": sid, "cwd": "/home/dev/app", "timestamp": ts,
            "uuid": str(uuid.uuid4()), "parentUuid": None, "isSidechain": False,
            "version": "2.1.210", "gitBranch": "main",
            "message": {"role": kind, "content": content},
        })

    with open(path, "w") as f:
        f.write(line("user", "please fix the job") + "\n")
        for i in range(150):
            tid = f"toolu_01{s}_{i}"
            kind = random.choice(["Bash", "Read", "Edit", "Grep"])
            if kind == "Bash":
                inp = {"command": f"fn run csv_read_py_data in{i}.csv"}
            else:
                inp = {"file_path": f"/home/dev/app/m{i}.py"}
            f.write(line("assistant", [
                {"type": "text", "text": "Let me check. " * random.randint(1, 30)},
                {"type": "tool_use", "id": tid, "name": kind, "input": inp},
            ]) + "\n")
            out = "x = compute(rows)  # a line of the file\n" * random.randint(10, 400)
            f.write(line("user", [{"type": "tool_result", "tool_use_id": tid, "content": out,
                                   "is_error": random.random() < 0.05}]) + "\n")
    total += os.path.getsize(path)
print(f"{total / 1e6:.1f} MB")
