"""Running what was planned: the stage actions, validation, the dispatch modes, gpu-validate."""
