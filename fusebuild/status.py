"""The one set of artifact statuses, shared by stages, reports, gpu-validate and the summary.

A status says what was established about an artifact, never more: only `pass` means its
numerics were checked by running it on the device it was built for.
"""
from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    PASS = "pass"                          # ran on its device, matched the reference
    FAIL = "fail"                          # ran (or emulated) and did not match, or crashed
    NOT_RUN = "not-run"                    # its toolchain is missing: nothing was built
    NOT_VALIDATED = "built-not-validated"  # built, but no device here to run it
    EMULATED = "emulated"                  # numerics checked by emulation, not on the device
    NOT_BUILT = "not built"                # a stage before validate failed (summary only)
    SPEC_ERROR = "spec error"              # the spec did not load (summary only)

    def __str__(self) -> str:
        return self.value

    @property
    def failed(self) -> bool:
        """Statuses that fail a build (a missing toolchain or device does not)."""
        return self in (Status.FAIL, Status.NOT_BUILT, Status.SPEC_ERROR)


def parse(text) -> Status | None:
    try:
        return Status(text)
    except ValueError:
        return None
