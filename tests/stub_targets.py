"""A test target: tir-cpu's backend whose device is never here (like tir-cuda on a CPU
machine), so its artifacts are built but `built-not-validated`."""
from fusebuild.backends.base import Device
from fusebuild.backends.tir_cpu.backend import Backend as TirCpu


class Backend(TirCpu):
    def device(self) -> Device:
        return Device(False, "no stub device here", "fusebuild gpu-validate")

    def run(self, build_dir, graph, inputs: dict) -> dict:
        from fusebuild.runtime.call import run  # the runtime knows the artifact as tir-cpu's
        return run("tir-cpu", build_dir, graph, inputs)
