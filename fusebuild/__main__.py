"""`python -m fusebuild check SPEC...`: load and check specs without building anything.

Prints each spec's variants and targets, or the error (file:line: field: message) with no
traceback. Exit code 1 if any spec is bad.

The build engine's commands run through doit (in a folder with dodo.py), building nothing:
`python -m fusebuild why [TASK|ARTIFACT|PATH ...]`, `python -m fusebuild dry-run [TASK ...]`,
`python -m fusebuild clean` (removes orphans under out/); see fusebuild/engine/commands.py.

`python -m fusebuild env create NAME | env list`: toolchain environments (fusebuild/envs.py).
`python -m fusebuild gpu-validate [--out out] [--specs specs]`: run built tir-cuda artifacts on
this machine's GPU against torch and rewrite their validation.json (fusebuild/gpu_validate.py;
needs only torch, pyyaml and jinja2: no doit, TVM, TileLang or IREE).
"""
from __future__ import annotations

import argparse
import sys

from .errors import FusebuildError
from .spec import load_spec


ENGINE_COMMANDS = ("why", "dry-run", "clean", "orphans")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "env":
        from .envs import command
        return command(argv[1:])
    if argv and argv[0] == "gpu-validate":
        from .gpu_validate import main as gpu_validate
        return gpu_validate(argv[1:])
    if argv and argv[0] in ENGINE_COMMANDS:
        from .engine.commands import run
        return run(argv)
    parser = argparse.ArgumentParser(prog="python -m fusebuild", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="load and check specs (no build)")
    check.add_argument("specs", nargs="+")
    args = parser.parse_args(argv)
    bad = 0
    for path in args.specs:
        try:
            spec = load_spec(path)
        except FusebuildError as err:
            print(err, file=sys.stderr)
            bad += 1
            continue
        for v in spec.variants:
            print(f"{spec.name}/{v.name}: targets {', '.join(v.targets)}; mode {v.mode}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
