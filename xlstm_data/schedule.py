"""Batch-size ramp-up: the global batch size (and each host's share) as a function of the step."""

from __future__ import annotations

import bisect
import functools
import itertools
import math

from xlstm_data.errors import ConfigError


class BatchSchedule:
    """Global and per-host rows per step from `global_batch_size` and `{step: factor}`."""

    def __init__(
        self,
        global_batch_size: int,
        factors: dict[int, float] | None,
        *,
        host_count: int,
        data_parallel_size: int = 1,
    ):
        self.global_batch_size = global_batch_size
        self.host_count = host_count
        steps = sorted(int(s) for s in (factors or {}))
        self._boundaries = steps
        self._sizes = [round(factors[s] * global_batch_size) for s in steps] if factors else []
        for step, size in zip(steps, self._sizes, strict=True):
            for divisor, what in (
                (host_count, "data-loading hosts"),
                (data_parallel_size, "data-parallel devices"),
            ):
                if size % divisor:
                    raise ConfigError(
                        f"Invalid data config: batch_rampup_factors gives {size} rows at step "
                        f"{step}, not divisible by the {divisor} {what}; choose factors whose "
                        f"batch is a multiple of {divisor}."
                    )
        all_sizes = [global_batch_size, *self._sizes]
        self.group_rows = functools.reduce(math.gcd, all_sizes) // host_count

    def global_rows(self, step: int) -> int:
        i = bisect.bisect_right(self._boundaries, step)
        return self._sizes[i - 1] if i else self.global_batch_size

    def local_rows(self, step: int) -> int:
        return self.global_rows(step) // self.host_count

    def rows_before(self, step: int) -> int:
        """Global rows of all steps before `step`, summed per constant stretch (O(changes))."""
        edges = [0, *[b for b in self._boundaries if 0 < b < step], step]
        return sum(
            (end - begin) * self.global_rows(begin) for begin, end in itertools.pairwise(edges)
        )

    def steps_covering(self, rows: int) -> int:
        """The fewest steps whose batches hold at least `rows` global rows."""
        begin, before = 0, 0
        for boundary in [*[b for b in self._boundaries if b > 0], None]:
            size = self.global_rows(begin)
            if boundary is None or before + (boundary - begin) * size >= rows:
                return begin + max(0, -(-(rows - before) // size))
            before += (boundary - begin) * size
            begin = boundary
        raise AssertionError("unreachable: the last stretch has no end")

    @property
    def is_constant(self) -> bool:
        return not self._sizes
