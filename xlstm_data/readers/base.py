"""What both readers share: their inputs and weights, the loader-wide settings, the schedule,
this host's place, and the shape of a local batch (the loader's `Reader` interface)."""

from __future__ import annotations

from collections.abc import Sequence

from xlstm_data.config.schedule import ResolvedStage
from xlstm_data.config.settings import LoaderSettings
from xlstm_data.readers.inputs import Input
from xlstm_data.readers.skips import Skips
from xlstm_data.schedule import BatchSchedule
from xlstm_data.stages.shift import stacked_field_count


class ReaderBase:
    def __init__(
        self,
        inputs: Sequence[Input],
        weights: Sequence[float],
        settings: LoaderSettings,
        *,
        schedule: BatchSchedule,
        host_index: int,
        host_count: int,
        compact: bool = True,
        stages: Sequence[ResolvedStage] | None = None,
    ):
        """`compact=False` keeps all fields in the local batches (for `preprocess_dataset`);
        `stages`: the config's schedule, resolved (its batch sizes are in `schedule`)."""
        self.inputs = list(inputs)
        self.weights = list(weights)
        self.settings = settings
        self.schedule = schedule
        self.host_index, self.host_count = host_index, host_count
        self.stages = stages
        self.skips = Skips.from_settings(settings, self.names)
        first_inputs = {i.tokens.first_input_id for i in self.inputs}
        self.first_input_id = min(first_inputs)
        """The token that opens every shifted input row (when all sources share it)."""
        self.compact = compact and len(first_inputs) == 1 and settings.shift_target != "targets"
        """Whether batches cross to the devices as targets and segmentation only (the devices
        derive inputs and positions): when every source opens rows with the same token."""

    @property
    def max_target_length(self) -> int:
        """The row length of the config (a schedule's stages may change it: `batch_shape`)."""
        return self.settings.max_target_length

    def next_step(self, step: int) -> int:
        """The first data step from `step` on that is delivered (not in skip_steps)."""
        return self.skips.next_step(step)

    def batch_shape(self, step: int) -> tuple[int, int]:
        """(rows, tokens per row) of the global batch at `step`."""
        return self.schedule.global_rows(step), self.max_target_length

    @property
    def shift_target(self) -> str:
        return self.settings.shift_target

    @property
    def stacked_fields(self) -> int:
        return stacked_field_count(self.settings.shift_target, self.compact)

    @property
    def drop_remainder(self) -> bool:
        return self.settings.drop_remainder

    @property
    def max_steps_per_epoch(self) -> int | None:
        return self.settings.max_steps_per_epoch

    @property
    def num_epochs(self) -> int | None:
        return self.settings.num_epochs

    @property
    def names(self) -> list[str]:
        return [i.name for i in self.inputs]
