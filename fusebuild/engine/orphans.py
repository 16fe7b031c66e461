"""Orphans: what is under out/ that no spec asks for any more.

The artifact layout is out/<spec>/<variant>/<target>/. A folder at any of those levels
that no current artifact lives in is an orphan (a spec, variant or target was removed
or renamed). Outputs of a spec that currently fails to load are *not* orphans: a typo
in a spec must never cost its built artifacts. Leftovers of killed builds (`.staging-*`
folders, `.<name>.*.tmp` files from fsutil) inside artifact folders are reported too.
Hidden entries at the top of out/ (the DB, fusebuild's own state) and plain files
(the build report) are never orphans.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_NAME = re.compile(r"^name:\s*['\"]?([A-Za-z0-9_.-]+)", re.M)


def protected_specs(errors) -> set:
    """Spec names whose outputs are kept because their file does not load now."""
    keep = set()
    for path, _err in errors:
        path = Path(path)
        keep.add(path.stem)
        try:                        # bounded: the file is the one that failed to load
            with open(path, "rb") if path.is_file() else open(os.devnull, "rb") as f:
                m = _NAME.search(f.read(1 << 16).decode(errors="replace"))
        except OSError:
            m = None
        if m:
            keep.add(m.group(1))
    return keep


def find(out, artifacts, keep_specs=()) -> tuple:
    """(orphan folders, leftover temp paths) under `out`, each sorted."""
    out = Path(out)
    wanted = {}
    for a in artifacts:
        wanted.setdefault(a.variant.spec, {}).setdefault(a.variant.name, set()).add(a.target)
    orphans, leftovers = [], []
    if not out.is_dir():
        return orphans, leftovers
    for spec_dir in _dirs(out):
        if spec_dir.name in keep_specs:
            continue
        variants = wanted.get(spec_dir.name)
        if variants is None:
            orphans.append(spec_dir)
            continue
        for var_dir in _dirs(spec_dir):
            targets = variants.get(var_dir.name)
            if targets is None:
                orphans.append(var_dir)
                continue
            for tgt_dir in _dirs(var_dir):
                if tgt_dir.name not in targets:
                    orphans.append(tgt_dir)
                else:
                    leftovers += _leftovers(tgt_dir)
    return sorted(orphans), sorted(leftovers)


def _dirs(folder: Path) -> list:
    # scandir: the entry type comes with the listing, no stat per entry (a no-op build
    # walks every artifact folder)
    with os.scandir(folder) as it:
        return [Path(e.path) for e in it if e.is_dir() and not e.name.startswith(".")]


def _temp(name: str) -> bool:
    return name.startswith(".staging-") or (name.startswith(".") and name.endswith(".tmp"))


def _leftovers(folder: Path) -> list:
    found, stages = [], None
    with os.scandir(folder) as it:
        for e in it:
            if _temp(e.name):
                found.append(Path(e.path))
            elif e.name == ".stages" and e.is_dir():
                stages = e.path
    if stages:
        with os.scandir(stages) as it:
            found += [Path(e.path) for e in it if e.name.startswith(".") and e.name.endswith(".tmp")]
    return found


def remove(paths) -> int:
    n = 0
    for p in paths:
        p = Path(p)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


def note(orphans, leftovers, out) -> str:
    """The build summary's line about orphans ('' if none)."""
    if not orphans and not leftovers:
        return ""
    parts = []
    if orphans:
        shown = ", ".join(str(Path(p).relative_to(out)) for p in orphans[:3])
        parts.append(f"{len(orphans)} orphaned folder(s) under {out}/ that no spec asks for ({shown}"
                     f"{', ...' if len(orphans) > 3 else ''})")
    if leftovers:
        parts.append(f"{len(leftovers)} leftover temp file(s) of interrupted builds")
    return "note: " + "; ".join(parts) + ". Remove with `python -m fusebuild clean` (or `doit orphans`)."
