"""`fusebuild export DEST [SPEC...]`: a self-contained folder of built artifacts.

DEST mirrors out/: DEST/<spec>/<variant>/<target>/ holds the files the target's loader
reads (runtime/targets.py) and the artifact's validation.json (its report and the
manifest the runtime reads, runtime/manifest.py), plus DEST/export.json listing what was
exported and what was left out, and why. `fusebuild.load(spec, out=DEST)` works from it
on a machine with no specs/ or out/, in any working directory.

Exported: fused artifacts that passed validation, or were built but not validated (a
GPU artifact built on a CPU machine: validate it where it runs) or emulated; both load
there only with allow_unvalidated=True or after validation. Left out, each with its
reason: failed validation, not built, missing files, files changed after validation,
no manifest, built from an older spec. DEST is replaced spec by spec, never merged with
what an earlier export left there.
"""
from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

from .. import settings
from ..errors import UseError, did_you_mean, one_of
from ..status import Status
from ..tables import table
from . import manifest as M
from .targets import TARGETS

EXPORTABLE = (Status.PASS, Status.NOT_VALIDATED, Status.EMULATED)
INDEX = "export.json"


def why_not(a, m: M.Manifest | None) -> str | None:
    """Why artifact `a` (plan.artifacts.Artifact) cannot be exported, or None."""
    if a.target not in TARGETS:
        return f"no runtime loader for {a.target}"
    if m is None:
        return "not validated (no validation.json)"
    if m.runtime is None:
        return "no runtime manifest in validation.json (older fusebuild): rebuild"
    if m.report.get("mode", "fused") != "fused":
        return f"built in mode {m.report['mode']}, not fused"
    diff = M.changed(m.key, M.spec_key(a.variant, a.target))
    if diff:
        return f"older than its spec ({', '.join(diff)} changed): rebuild"
    if m.status not in EXPORTABLE:
        return f"{m.status or 'no status'}{': ' + m.reason if m.reason else ''}"
    files = TARGETS[a.target].files
    missing = [f for f in files if not (a.dir / f).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    if M.file_hashes(a.dir, files) != m.files:
        return "files changed after validation: rebuild"
    return None


def export(dest, names=(), specs="specs", out="out") -> dict:
    """Copy the exportable artifacts of the named specs (all when empty) into dest."""
    from ..plan.project import Project
    project = Project(specs, out)
    known = {s.name for s in project.specs}
    for name in names:
        if name not in known:
            raise UseError(f"no spec named {name!r} in {specs}{did_you_mean(name, known)}", path=str(specs),
                           valid=one_of(known) if known else "a folder of spec files")
    chosen = set(names) or known
    dest, src = Path(dest), Path(out).resolve()
    if dest.resolve() == src or src in dest.resolve().parents:
        raise UseError(f"cannot export into the build output folder {out}", path=str(dest),
                       valid="a folder outside it (each exported spec's folder is replaced)")
    done, left = [], []
    for spec in sorted(chosen):
        shutil.rmtree(dest / spec, ignore_errors=True)
    for a in project.artifacts:
        if a.variant.spec not in chosen:
            continue
        m = M.read(a.dir)
        reason = why_not(a, m)
        if reason:
            left.append({"artifact": a.id, "reason": reason})
            continue
        folder = dest / a.variant.spec / a.variant.name / a.target
        folder.mkdir(parents=True, exist_ok=True)
        for f in (*TARGETS[a.target].files, M.REPORT):
            shutil.copy2(a.dir / f, folder / f)
        done.append({"artifact": a.id, "status": str(m.status)})
    index = {"format": "fusebuild.export/v1", "created": datetime.datetime.now(datetime.UTC).isoformat(
        timespec="seconds"), "specs": sorted(chosen), "exported": done, "left_out": left}
    dest.mkdir(parents=True, exist_ok=True)
    (dest / INDEX).write_text(json.dumps(index, indent=1) + "\n")
    return index


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="fusebuild export", description=__doc__.splitlines()[0])
    p.add_argument("dest", help="folder to write (created; each exported spec's folder is replaced)")
    p.add_argument("specs", nargs="*", metavar="SPEC", help="spec names (default: every spec)")
    p.add_argument("--specs-dir", default=settings.get("FUSEBUILD_SPECS"),
                   help="spec folder the build used (default: FUSEBUILD_SPECS, specs)")
    p.add_argument("--out", default=settings.get("FUSEBUILD_OUT"),
                   help="build output folder (default: FUSEBUILD_OUT, out)")
    args = p.parse_args(argv)
    index = export(args.dest, args.specs, args.specs_dir, args.out)
    rows = [[x["artifact"], x["status"], ""] for x in index["exported"]] + \
           [[x["artifact"], "left out", x["reason"]] for x in index["left_out"]]
    print(table(["artifact", "exported", "why not"], rows, rule=False))
    print(f"{len(index['exported'])} artifacts exported to {args.dest} ({len(index['left_out'])} left out)")
    if not index["exported"]:
        print("nothing exported: build the specs first (doit build)", file=sys.stderr)
        return 1
    return 0
