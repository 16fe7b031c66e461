"""Which workers may run a stage: resource needs, read from the target registry.

A target declares, per stage, the Dask worker resources a machine must offer
(`TargetInfo.resources`, backends/__init__.py) as alternatives in order of preference:

    tir-cuda   compile/assemble ({"tilelang": 1},)   validate ({"GPU": 1},)
    mlir-aie   compile/assemble ({"aiecc": 1}, {})   validate ({"NPU": 1}, {})
    tir-cpu    nothing: any worker

`choose` picks, for one build, the first alternative some worker offers (`{}`: any worker).
The choice is made once per (target, stage) from the scheduler's worker list and kept for
the build, so every artifact of a target is built the same way, with the toolchain the
probe found (its versions are in every key). None means no worker can take the stage;
the caller says so in the artifact's status (`no worker with GPU`), never waits forever.

Render needs nothing from a machine (it is pure Python over the coordinator's templates).
"""
from __future__ import annotations

STAGES = ("render", "compile", "assemble", "validate")
ANY = ({},)


def needs(info, stage: str) -> tuple:
    """The alternatives (resource dicts, best first) for `stage` of target `info`."""
    if stage == "probe":                     # the toolchain is probed where compile will run
        stage = "compile"
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    return tuple(dict(alt) for alt in info.resources.get(stage, ANY)) or ANY


def offers(worker_resources: dict, need: dict) -> bool:
    return all(worker_resources.get(name, 0) >= amount for name, amount in need.items())


def first_offered(alternatives, workers: dict) -> dict | None:
    """The first alternative some worker offers; `workers`: address -> {"resources": {...}}."""
    for alt in alternatives:
        if any(offers(w.get("resources") or {}, alt) for w in workers.values()):
            return alt
    return None


def describe(need: dict) -> str:
    """'GPU', 'aiecc and NPU', 'GPU=2' ... for messages; {} is 'any worker'."""
    if not need:
        return "any worker"
    return " and ".join(name if amount == 1 else f"{name}={amount:g}" for name, amount in sorted(need.items()))


def missing(alternatives) -> str:
    """The reason a stage has no worker: 'no worker with GPU' (alternatives joined by 'or')."""
    named = [describe(a) for a in alternatives if a]
    if len(named) < len(alternatives):           # `{}` was acceptable: there is no worker at all
        return "no worker (the scheduler has none)"
    return "no worker with " + " or ".join(named)
