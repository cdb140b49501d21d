"""What network ops and column ops share: the numpy arrays they carry, counted and checked alike."""

from __future__ import annotations

from typing import ClassVar

import numpy as np


class Weighted:
    """Mixin for ops holding their parameters as numpy arrays (any ndarray attribute counts)."""

    non_finite: ClassVar[str] = "its weights contain NaN or infinity"  # the refusal, in the op's words

    @property
    def arrays(self) -> list[np.ndarray]:
        """The parameter arrays the op carries."""
        return [v for v in vars(self).values() if isinstance(v, np.ndarray)]

    @property
    def n_params(self) -> int:
        return sum(a.size for a in self.arrays)

    def same_as(self, other: object) -> bool:
        """Equal class and fields, arrays compared by value (dataclass ``==`` cannot compare arrays):
        two frontends' paths to one model must give the same op."""
        if type(other) is not type(self) or vars(self).keys() != vars(other).keys():
            return False
        return all(
            np.array_equal(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else a == b
            for a, b in zip(vars(self).values(), vars(other).values(), strict=True)
        )

    def refusal(self) -> str | None:
        """Why this op cannot become C (None: it can); ops with more conditions extend it."""
        if any(not np.all(np.isfinite(a)) for a in self.arrays):
            return self.non_finite
        return None
