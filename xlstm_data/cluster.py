"""Joining a Ray cluster, for the commands that run on one (`prepare --ray`, `plan --ray`;
`pip install "xlstm-data[ray]"`)."""

from __future__ import annotations

from types import ModuleType

from xlstm_data.errors import ConfigError

TASK_RETRIES = 3
"""Attempts of a task whose worker or node died (Ray reruns it; every task may run twice)."""


def connect(address: str, command: str) -> ModuleType:
    """The `ray` module, connected to the cluster at `address` ("auto": the one this machine
    belongs to; "local": one started here) unless this process is connected already."""
    try:
        import ray
    except ImportError as error:
        raise ConfigError(f"{command} --ray needs Ray: pip install 'xlstm-data[ray]'") from error
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, log_to_driver=False)
    return ray
