#!/usr/bin/env python3
"""The naive loader issue 21 compares replay with: json-parse every spool
line, regex-extract `fn run` ids, bulk-insert them into SQLite in one
transaction. No dedupe, no pairing, no rollups, no checkpoints, no
quarantine — a floor for what "ingest" could cost in Python.

usage: naive_loader.py DB PATH...   (files or directories of *.jsonl)
prints: lines, calls, seconds
"""

import json
import os
import re
import sqlite3
import sys
import time

FN_RUN = re.compile(r"^fn run ([A-Za-z0-9][A-Za-z0-9_]*)")


def files(paths):
    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith(".jsonl"):
                    yield os.path.join(path, name)
        else:
            yield path


def main():
    db, paths = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS calls (envelope_id TEXT, session_id TEXT, function_id TEXT, ts TEXT)"
    )
    rows, lines = [], 0
    for path in files(paths):
        with open(path, "rb") as f:
            for line in f:
                lines += 1
                envelope = json.loads(line)
                event = envelope.get("event") or {}
                command = event.get("command")
                if not isinstance(command, str):
                    continue
                match = FN_RUN.match(command)
                if match:
                    rows.append((envelope.get("id"), event.get("session_id"), match.group(1), envelope.get("ts")))
    with conn:
        conn.executemany("INSERT INTO calls VALUES (?, ?, ?, ?)", rows)
    conn.close()
    print(f"{lines} lines, {len(rows)} calls, {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
