"""Append-only shards with a manifest: synthesis that survives ``kill -9`` and resumes exactly.

Work is cut into numbered chunks before it starts: a chunk is named by its attempt (the round
of asks it belongs to, cut when the round starts) and its number in that round. Each finished
chunk is written as ``part-<attempt>-<chunk>.parquet`` (temporary file, fsync, rename), and
only then is a line appended to ``manifest.jsonl`` (and fsynced). On restart the manifest says
which chunks are done; a shard file without its manifest line (killed between the two writes)
is deleted and its chunk redone.
A manifest written for other inputs or settings (another fingerprint) is moved aside as
``<folder>.stale``, never mixed in.

Example::

    shards = ShardStore(Path("results/x/synth/shards"), fingerprint="ab12...")
    for chunk in range(n_chunks):
        if (1, chunk) in shards.done:
            continue
        shards.write((1, chunk), rows)      # a polars DataFrame: attempt 1, chunk `chunk`
    table = shards.collect()
"""

import json
import os
import shutil
from pathlib import Path

import polars as pl

from embedlab.atomic import atomic_write, write_text
from embedlab.errors import naming_a_full_disk


class ShardStore:
    def __init__(self, folder: str | Path, fingerprint: str):
        self.folder = Path(folder)
        self.manifest = self.folder / "manifest.jsonl"
        self.fingerprint = fingerprint
        self.done: dict[tuple[int, int], dict] = {}  # (attempt, chunk) -> its manifest line
        self._open()

    def _open(self) -> None:
        if self.manifest.exists():
            lines = self.manifest.read_text().splitlines()
            header = json.loads(lines[0]) if lines else {}
            if header.get("fingerprint") != self.fingerprint:
                stale = self.folder.with_name(self.folder.name + ".stale")
                shutil.rmtree(stale, ignore_errors=True)
                self.folder.rename(stale)
            else:
                for line in lines[1:]:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        break  # a line cut by a kill: its chunk is redone
                    if (self.folder / entry["shard"]).exists():
                        self.done[entry["attempt"], entry["chunk"]] = entry
        self.folder.mkdir(parents=True, exist_ok=True)
        # rewrite the manifest without any line cut by a kill, so appends start on a fresh line
        lines = [json.dumps({"fingerprint": self.fingerprint})]
        lines += [json.dumps(e) for _, e in sorted(self.done.items())]
        write_text(self.manifest, "\n".join(lines) + "\n")
        known = {e["shard"] for e in self.done.values()}
        for path in self.folder.glob("part-*.parquet*"):
            if path.name not in known:
                path.unlink()  # written but never recorded, or a temporary file

    def _append(self, entry: dict) -> None:
        with self.manifest.open("a") as f:
            f.write(json.dumps(entry) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def write(self, key: tuple[int, int], rows: pl.DataFrame, **record) -> None:
        """Store one finished chunk, ``key`` = (attempt, chunk), durably, then record it in the
        manifest."""
        attempt, chunk = key
        name = f"part-{attempt}-{chunk:06d}.parquet"
        resume = "synthesis resumes after the last recorded shard"
        with naming_a_full_disk(self.folder, f"shard {name}", resume):
            atomic_write(self.folder / name, rows.write_parquet)
        entry = {"attempt": attempt, "chunk": chunk, "shard": name, "rows": rows.height, **record}
        self._append(entry)
        self.done[key] = entry

    def collect(self, attempt: int | None = None) -> pl.DataFrame | None:
        """The recorded shards (of one attempt, or all) in (attempt, chunk) order; None if there
        are none."""
        paths = [
            self.folder / e["shard"]
            for key, e in sorted(self.done.items())
            if attempt is None or key[0] == attempt
        ]
        return pl.concat([pl.read_parquet(p) for p in paths], how="vertical") if paths else None
