"""`fusebuild.load`: a built fused operator as a callable, dispatched by shape, dtype and device.

`load(spec)` reads the manifests of the spec's artifacts (out/<spec>/<variant>/<target>/
validation.json, runtime/manifest.py) and decides, for each, whether it may run here:

  usable      validation passed on this kind of device (runtime/targets.py same_kind),
              its files are present, and it is not older than its spec
  caveat      built but not validated (a GPU artifact built on a CPU machine), emulated
              (mlir-aie), or validated on another kind of device: used only with
              allow_unvalidated=True, with a warning when it is first loaded
  problem     failed validation, not built, missing files, built from an older spec
              (when specs/ has the spec: the graph, hints, seed or tolerance it was
              built and validated with differ), or not a fused artifact: never used

Nothing is loaded until a call needs it. `op(*inputs)` (or by input name) takes torch
tensors and picks, by the inputs' device (CPU: tir-cpu, then mlir-cpu, then mlir-aie;
CUDA: tir-cuda) or the `target` given to load, the first artifact whose signature takes
their shapes and dtypes (a static variant before a dynamic-M artifact); the choice is
cached per (shapes, dtypes, devices), so a repeated call costs a dict lookup, the output
allocation and the kernel launch. Every bad use is one UseError saying what was wrong
and what would be valid; a non-contiguous input is copied, with a warning saying so.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import SpecError, UseError, did_you_mean, one_of
from ..status import Status
from . import manifest as M
from .call import Call
from .signature import Mismatch
from .targets import BY_DEVICE, TARGETS, describe, here, same_kind

# spec/fields.py's NAME_RE, not imported from there: importing spec/ loads the YAML parser
SPEC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def load(spec: str, target: str | None = None, *, out="out", specs="specs", allow_unvalidated: bool = False) -> Op:
    """The built operator `spec` from the folder `out` (a build's out/ or an export).

    target: None picks by the inputs' device; else only that target's artifacts.
    specs: the spec folder to check the artifacts against (skipped when it does not
    hold the spec, or when None). allow_unvalidated: also load artifacts that were not
    validated on this kind of device (warned)."""
    return Op(spec, target, out=out, specs=specs, allow_unvalidated=allow_unvalidated)


@dataclass
class Entry:
    """One artifact of the spec, as the op sees it."""
    manifest: M.Manifest
    problem: str | None = None
    caveat: str | None = None
    kernels: dict = field(default_factory=dict)      # torch device -> loaded kernel

    @property
    def target(self) -> str:
        return self.manifest.folder.name

    @property
    def variant(self) -> str:
        return self.manifest.folder.parent.name

    @property
    def signature(self):
        return self.manifest.signature

    def usable(self, allow_unvalidated: bool) -> bool:
        return self.problem is None and (self.caveat is None or allow_unvalidated)


@dataclass(frozen=True)
class VariantInfo:
    """A line of `op.variants`: one built artifact and whether it runs here."""
    variant: str
    target: str
    status: str
    usable: bool
    note: str
    inputs: str

    def __str__(self) -> str:
        mark = "usable" if self.usable else "not used"
        note = ": " + self.note if self.note else ""
        return f"{self.target} {self.variant}: {self.status}, {mark}{note} [{self.inputs}]"


class Op:
    def __init__(self, spec, target=None, *, out="out", specs="specs", allow_unvalidated=False):
        if not isinstance(spec, str) or not SPEC_NAME.fullmatch(spec):
            raise UseError(f"{spec!r} is not a spec name", path="fusebuild.load",
                           valid="letters, digits and _, as in the spec's `name:`")
        if target is not None and target not in TARGETS:
            raise UseError(f"unknown target {target!r}{did_you_mean(target, TARGETS)}",
                           path=f"fusebuild.load({spec!r})",
                           valid=one_of(TARGETS) + ", or None to pick by the inputs' device")
        self.spec, self.target, self.out = spec, target, Path(out)
        self.allow_unvalidated = allow_unvalidated
        self.rebuild = f"doit build:{spec}"
        self.entries = self._discover(specs)
        usable = [e for e in self.entries if e.usable(allow_unvalidated)]
        if not usable:
            raise UseError(f"no artifact of {spec} can run here:\n  " + "\n  ".join(str(v) for v in self.variants),
                           path=str(self.out / spec),
                           valid=f"rebuild ({self.rebuild})" + ("" if allow_unvalidated
                                                                  else ", or allow_unvalidated=True for "
                                                                       "unvalidated ones"))
        sig = usable[0].signature
        self.inputs, self.outputs = sig.input_names, sig.output_names
        self._n = len(self.inputs)
        for e in self.entries:
            if e.problem is None and (e.signature.input_names, e.signature.output_names) != (self.inputs, self.outputs):
                e.problem = (f"its inputs {list(e.signature.input_names)} -> {list(e.signature.output_names)} differ "
                             f"from the other artifacts' (built from another version of the spec): "
                             f"rebuild: {self.rebuild}")
        self._plans: dict = {}
        self._warned: set = set()
        from .torchop import register
        self.torch_op = register(self)

    # --- what is built ------------------------------------------------------------------
    def _discover(self, specs) -> list:
        root = self.out / self.spec
        if not root.is_dir():
            built = sorted({p.parts[-4] for p in self.out.glob("*/*/*/" + M.REPORT)})
            raise UseError(f"no built artifacts of {self.spec!r} in {self.out}{did_you_mean(self.spec, built)}",
                           path=str(root), valid=("specs built there: " + one_of(built)) if built
                           else f"build it first ({self.rebuild}) or pass out= the folder it was built or exported to")
        current = _current_spec(specs, self.spec)
        targets = [self.target] if self.target else list(TARGETS)
        folders = [p for t in targets for p in sorted(root.glob(f"*/{t}"), key=_natural) if p.is_dir()]
        entries = [self._entry(f, current) for f in folders]
        if not entries:
            raise UseError(f"no {self.target or ''} artifacts of {self.spec} under {root}".replace("  ", " "),
                           path=str(root), valid=f"build it first ({self.rebuild})")
        return entries

    def _entry(self, folder: Path, current) -> Entry:
        m = M.read(folder) or M.Manifest(folder, {})
        e = Entry(m)
        rt, rebuild = TARGETS[e.target], f"rebuild: {self.rebuild}"
        if not m.report:
            e.problem = f"not validated (no readable {M.REPORT}): {rebuild}"
        elif m.runtime is None:
            e.problem = f"its {M.REPORT} has no runtime manifest (validated by an older fusebuild): {rebuild}"
        elif m.report.get("mode", "fused") != "fused":
            e.problem = (f"built in mode {m.report['mode']} (one artifact per node); load runs fused artifacts: "
                         f"rebuild without FUSEBUILD_MODE ({self.rebuild})")
        elif current is not None and (stale := _stale(m, current, e.variant, e.target)):
            e.problem = f"{stale}: {rebuild}"
        elif m.status is Status.FAIL:
            e.problem = f"failed validation: {m.reason or 'see its report'}"
        elif m.status not in (Status.PASS, Status.NOT_VALIDATED, Status.EMULATED):
            e.problem = f"not built ({m.status or 'no status'}{': ' + m.reason if m.reason else ''})"
        elif missing := [f for f in rt.files if not (folder / f).is_file()]:
            e.problem = f"missing {', '.join(str(folder / f) for f in missing)}: {rebuild}"
        elif m.status is Status.NOT_VALIDATED:
            fix = m.report.get("fix")
            e.caveat = f"built but not validated ({m.reason})" + (f"; validate it: {fix}" if fix else "")
        elif m.status is Status.EMULATED:
            e.caveat = f"validated by emulation only, never on its device ({m.reason})"
        elif not same_kind(m.validated_on, now := here(e.target)):
            e.caveat = f"validated on {describe(m.validated_on)}, not on this machine's {describe(now)}"
        return e

    @property
    def variants(self) -> list:
        """Every built artifact of the spec: VariantInfo (variant, target, status, usable, note, inputs)."""
        out = []
        for e in self.entries:
            ok = e.usable(self.allow_unvalidated)
            note = e.problem or e.caveat or ""
            if ok and e.caveat:
                note = "allowed unvalidated: " + note
            sig = e.signature
            out.append(VariantInfo(e.variant, e.target, str(e.manifest.status or "?"), ok, note,
                                   sig.describe() if sig else "?"))
        return out

    def report(self, *inputs, variant: str | None = None, target: str | None = None) -> dict:
        """The validation report (validation.json) of the artifact these inputs run, or of
        the one named by variant (and target)."""
        if inputs:
            tensors = self._args(inputs, {})
            return self._choose(tensors)[0].manifest.report
        found = [e for e in self.entries if (variant is None or e.variant == variant)
                 and (target is None or e.target == target)]
        if len(found) != 1:
            names = [f"{e.variant} ({e.target})" for e in self.entries]
            raise UseError(f"{len(found)} artifacts of {self.spec} match variant={variant!r} target={target!r}",
                           path=str(self.out / self.spec), valid="one of " + ", ".join(names))
        return found[0].manifest.report

    def tolerance(self, *inputs, ref, output: str | None = None) -> tuple:
        """(atol, rtol) that validation allows for `output` of the artifact these inputs
        run, given a reference `ref` of that output (atol scales with max|ref|)."""
        output = output or self.outputs[0]
        if output not in self.outputs:
            raise UseError(f"{self.spec} has no output {output!r}", valid=one_of(self.outputs))
        entry = self._choose(self._args(inputs, {}))[0]
        return entry.manifest.tolerance(output).bounds(ref)

    def __repr__(self) -> str:
        head = f"fusebuild op {self.spec}({', '.join(self.inputs)}) -> {', '.join(self.outputs)} from {self.out}"
        return "\n".join([head] + [f"  {v}" for v in self.variants])

    # --- calling ------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        # the hot path: positional tensors, a cached plan (bench/runtime_bench.py times it)
        if not kwargs and len(args) == self._n:
            try:
                key = tuple([(t.shape, t.dtype, t.device) for t in args])
            except AttributeError:                    # not a tensor: _args says which
                key = None
            plan = self._plans.get(key)
            if plan is not None:
                return plan(list(args))
        tensors = self._args(args, kwargs)
        key = tuple([(t.shape, t.dtype, t.device) for t in tensors])
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._plan(tensors)
        return plan(tensors)

    def _args(self, args, kwargs) -> list:
        names = self.inputs
        if not kwargs and len(args) == len(names):
            tensors = list(args)
        else:
            if len(args) > len(names):
                raise UseError(f"takes {len(names)} inputs, got {len(args)}", path=f"{self.spec}({', '.join(names)})")
            bound = dict(zip(names, args))
            for k, v in kwargs.items():
                if k not in names:
                    raise UseError(f"unknown input {k!r}{did_you_mean(k, names)}",
                                   path=f"{self.spec}({', '.join(names)})", valid=one_of(names))
                if k in bound:
                    raise UseError(f"input {k!r} given twice (by position and by name)",
                                   path=f"{self.spec}({', '.join(names)})")
                bound[k] = v
            missing = [n for n in names if n not in bound]
            if missing:
                raise UseError(f"missing input{'s' if len(missing) > 1 else ''} {', '.join(missing)}",
                               path=f"{self.spec}({', '.join(names)})")
            tensors = [bound[n] for n in names]
        for name, t in zip(names, tensors):
            if not isinstance(t, torch.Tensor):
                raise UseError(f"input {name} is a {type(t).__name__}, not a torch.Tensor",
                               path=f"{self.spec}({', '.join(names)})")
        return tensors

    def _device(self, tensors):
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            where = ", ".join(f"{n} on {t.device}" for n, t in zip(self.inputs, tensors))
            raise UseError(f"inputs are on different devices: {where}", path=f"fusebuild op {self.spec}",
                           valid="every input on one device")
        device = devices.pop()
        if self.target is not None and TARGETS[self.target].device != device.type:
            raise UseError(f"target {self.target} takes {TARGETS[self.target].device} tensors; the inputs are on "
                           f"{device}", path=f"fusebuild op {self.spec}",
                           valid=f"inputs on {TARGETS[self.target].device}, or load with target=None")
        if device.type not in BY_DEVICE:
            raise UseError(f"no fusebuild target runs tensors on {device}", path=f"fusebuild op {self.spec}",
                           valid=one_of(BY_DEVICE) + " tensors")
        return device

    def _choose(self, tensors) -> tuple:
        """(entry, symbol values, device) of the artifact that runs these inputs; UseError if none."""
        device = self._device(tensors)
        order = [self.target] if self.target else list(BY_DEVICE[device.type])
        shapes = [tuple(t.shape) for t in tensors]
        dtypes = [str(t.dtype).removeprefix("torch.") for t in tensors]
        matches, misses = [], []
        for e in self.entries:
            if e.target not in order or e.signature is None:
                continue
            try:
                matches.append((e, e.signature.bind(shapes, dtypes)))
            except Mismatch as m:
                misses.append((e, m))
        matches.sort(key=lambda ev: (order.index(ev[0].target), len(ev[0].signature.dynamic)))
        for i, (e, values) in enumerate(matches):
            if e.usable(self.allow_unvalidated):
                skipped = [x for x, _ in matches[:i]]
                if skipped:
                    self._warn(("skip", e.variant, e.target),
                               f"{self.spec}: running {e.target} {e.variant}; not using "
                               + "; ".join(f"{x.target} {x.variant} ({x.problem or x.caveat})" for x in skipped))
                return e, values, device
        if matches:
            raise self._unusable(matches[0][0])
        raise self._no_match(tensors, shapes, dtypes, order, misses, device)

    def _plan(self, tensors):
        e, values, device = self._choose(tensors)
        return _Plan(self, e, Call(self._kernel(e, device), e.signature, values, device))

    def _kernel(self, e: Entry, device):
        if device in e.kernels:
            return e.kernels[device]
        rt, folder = TARGETS[e.target], e.manifest.folder
        if e.caveat:
            what = ("it runs in fusebuild's host emulator of the design (slow; not an NPU run)"
                    if rt.kind == "emulator" else "its results are not checked on this machine")
            self._warn(("caveat", e.variant, e.target),
                       f"{self.spec}: loading {e.target} {e.variant}, {e.caveat}; {what} (allow_unvalidated=True)")
        got = M.file_hashes(folder, rt.files)
        changed = sorted(f for f in rt.files if got.get(f) != e.manifest.files.get(f))
        if changed:
            raise UseError(f"{', '.join(changed)} changed after validation (sha256 differs from {M.REPORT}): "
                           f"the bytes that would run were never checked", path=str(folder),
                           valid=f"rebuild ({self.rebuild})")
        try:
            cls = rt.kernel_class()
        except ImportError as err:
            raise UseError(f"cannot load {e.target} artifacts here: {err}", path=str(folder), valid=rt.needs) from None
        try:
            kernel = cls(folder, e.signature, e.manifest, device)
        except Exception as err:  # noqa: BLE001  (whatever the toolchain's loader raises becomes one UseError)
            raise UseError(f"cannot load: {type(err).__name__}: {err}", path=str(folder),
                           valid=f"rebuild ({self.rebuild})") from None
        e.kernels[device] = kernel
        return kernel

    def _warn(self, key, message):
        if key not in self._warned:
            self._warned.add(key)
            warnings.warn("fusebuild: " + message, RuntimeWarning, stacklevel=5)    # the caller of op(...)

    def _copied(self, name, t):
        self._warn(("copy", name), f"{self.spec}: input {name} is not contiguous (shape {list(t.shape)}, stride "
                   f"{list(t.stride())}); it was copied to a contiguous tensor, on every call (pass "
                   f"{name}.contiguous() once to avoid the copy)")
        return t.contiguous()

    # --- errors -------------------------------------------------------------------------
    def _grad(self, name) -> UseError:
        return UseError(f"input {name} requires grad, and fusebuild ops compute no gradients (a backward "
                        f"would silently miss this op)", path=f"fusebuild op {self.spec}",
                        valid=f"call under torch.no_grad() or torch.inference_mode(), or pass {name}.detach()")

    def _unusable(self, e: Entry) -> UseError:
        if e.problem:
            return UseError(e.problem, path=str(e.manifest.folder))
        return UseError(f"{e.caveat}; not loaded", path=str(e.manifest.folder),
                        valid="fusebuild.load(..., allow_unvalidated=True) to run it anyway (warned)")

    def _no_match(self, tensors, shapes, dtypes, order, misses, device) -> UseError:
        where = f"fusebuild op {self.spec}"
        got = ", ".join(f"{n} {d}[{', '.join(map(str, s))}]" for n, d, s in zip(self.inputs, dtypes, shapes))
        if not any(e.target in order for e in self.entries):
            built = sorted({e.target for e in self.entries})
            return UseError(f"the inputs are on {device} but no {'/'.join(order)} artifact of {self.spec} is built "
                            f"(built: {', '.join(built)})", path=where,
                            valid=f"inputs on {' or '.join(sorted({TARGETS[t].device for t in built}))}, or build "
                                  f"{order[0]} variants")
        dtype_only = [m for _, m in misses if m.kind == "dtype"]
        if dtype_only:
            return UseError(f"{dtype_only[0]} ({got})", path=where,
                            valid="inputs of the built dtypes: " + one_of({t.dtype for e, _ in misses
                                                                           for t in e.signature.inputs}))
        shown: dict = {}                                  # one line per variant and signature, its targets joined
        for e, _ in misses:
            shown.setdefault((e.variant, e.signature.describe()), []).append(e.target)
        built = "; ".join(f"{v} ({', '.join(ts)}): {d}" for (v, d), ts in shown.items())
        return UseError(f"no built variant takes {got}", path=where,
                        valid=f"the shapes of a built variant ({built}), or add these shapes to the spec's params "
                              f"and rebuild ({self.rebuild})")

    # --- torch.compile: shapes without running ------------------------------------------
    def fake(self, *tensors):
        """Outputs of the right shape, dtype and device, computed from the manifests only
        (the fake implementation of the torch op)."""
        for name, t in zip(self.inputs, tensors):
            if t.requires_grad and torch.is_grad_enabled():
                raise self._grad(name)
        e, values, device = self._choose(list(tensors))
        outs = [torch.empty(s, dtype=getattr(torch, t.dtype), device=device)
                for s, t in zip(e.signature.output_shapes(values), e.signature.outputs)]
        return outs[0] if len(outs) == 1 else tuple(outs)


class _Plan:
    """The cached decision for one (shapes, dtypes, devices): a prepared Call."""
    __slots__ = ("call", "entry", "op", "single")

    def __init__(self, op, entry, call):
        self.op, self.entry, self.call, self.single = op, entry, call, len(call.shapes) == 1

    def __call__(self, tensors):
        grad = torch.is_grad_enabled()
        for i, t in enumerate(tensors):
            if not t.is_contiguous():
                tensors[i] = self.op._copied(self.op.inputs[i], t)
            if grad and t.requires_grad:
                raise self.op._grad(self.op.inputs[i])
        outs = self.call(tensors)
        return outs[0] if self.single else tuple(outs)


def _natural(path: Path):
    """M2 before M16: variant folders in numeric order."""
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", str(path))]


def _current_spec(specs, name: str):
    """The spec named `name` in the folder `specs`, loaded, or None if the folder does not
    hold it. A spec that does not load is an error: the artifacts cannot be checked."""
    if specs is None or not Path(specs).is_dir():
        return None
    named = re.compile(rf"^name:\s*['\"]?{re.escape(name)}['\"]?\s*(#.*)?$", re.MULTILINE)
    for path in sorted(Path(specs).glob("*.yaml")) + sorted(Path(specs).glob("*.yml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if named.search(text):
            from ..spec.load import load_spec
            try:
                return load_spec(path)
            except SpecError as err:
                raise UseError(f"cannot check the built artifacts against their spec: {err}", path=str(path),
                               valid="a spec that loads, or fusebuild.load(..., specs=None) to skip the check"
                               ) from None
    return None


def _stale(m: M.Manifest, spec, variant: str, target: str) -> str | None:
    """Why the artifact no longer matches the current spec, or None."""
    v = next((v for v in spec.variants if v.name == variant), None)
    if v is None:
        return (f"{spec.path} no longer has variant {variant} "
                "(a leftover of an older spec; `fusebuild clean` removes it)")
    if target not in v.targets:
        return f"{spec.path} no longer builds {target} for {variant} (`fusebuild clean` removes it)"
    diff = M.changed(m.key, M.spec_key(v, target))
    if diff:
        return f"older than its spec: {', '.join(diff)} changed in {spec.path} since it was built"
    return None
