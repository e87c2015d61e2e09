"""The array-module helper: numpy everywhere, cupy where a working GPU is present.

This is the only module that imports cupy (STYLE: optional heavy imports live behind one door).
The GPU dispatcher reuses it to learn whether a GPU is usable.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy

if TYPE_CHECKING:
    from types import ModuleType

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArrayModule:
    """An array namespace (`xp`) and its name."""

    xp: ModuleType
    name: Literal["numpy", "cupy"]

    def to_numpy(self, array: object) -> numpy.ndarray:
        """Copy `array` to host memory as a numpy array (a no-op for numpy)."""
        if self.name == "cupy":
            return self.xp.asnumpy(array)  # type: ignore[no-any-return]
        return numpy.asarray(array)


NUMPY = ArrayModule(xp=numpy, name="numpy")


def get_array_module(prefer_gpu: bool = True) -> ArrayModule:
    """Return cupy when asked for, importable, available and working; numpy otherwise."""
    if not prefer_gpu:
        return NUMPY
    return _probe_cupy()


@functools.cache
def _probe_cupy() -> ArrayModule:
    """Try cupy once per process; log the reason once when falling back to numpy."""
    try:
        import cupy
    except ImportError:
        return NUMPY
    try:
        if not cupy.is_available():
            _log.info("cupy installed but no usable CUDA device; using numpy")
            return NUMPY
        # A first tiny allocation: a driver/runtime mismatch only shows here, not at import.
        probe = cupy.arange(4, dtype=cupy.uint64)
        int(probe.sum())
    except Exception as exc:  # noqa: BLE001  (any CUDA runtime error means: no GPU for us)
        _log.warning("cupy failed its first allocation (%s); using numpy", exc)
        return NUMPY
    return ArrayModule(xp=cupy, name="cupy")
