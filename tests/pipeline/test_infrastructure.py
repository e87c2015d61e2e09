"""The job table, the array-module helper, atomic files and the package exports."""

from __future__ import annotations

import importlib
import logging
import sys
import types
from pathlib import Path

import numpy
import pytest

import pipeline
from messages.artifacts import PipelineResult, ScorerConfig
from pipeline import array_module
from pipeline.errors import PipelineInputError
from pipeline.files import read_model, write_bytes_atomic, write_model
from pipeline.jobs import JOBS, STEP_JOBS
from pipeline.params import SieveParams


def test_jobs_table_covers_every_job() -> None:
    """Seven jobs, steps 1-6 in order plus selfplay, each importable with a main()."""
    assert list(JOBS) == [
        "sieve",
        "scorer_meta",
        "full_scoring",
        "ml_meta",
        "train",
        "predict",
        "selfplay",
    ]
    assert STEP_JOBS == {
        1: "sieve",
        2: "scorer_meta",
        3: "full_scoring",
        4: "ml_meta",
        5: "train",
        6: "predict",
    }
    assert JOBS["selfplay"].step is None
    for name, info in JOBS.items():
        assert info.module == f"pipeline.{name}"
        assert callable(importlib.import_module(info.module).main)
        assert issubclass(info.result, PipelineResult)
        assert info.params.model_config.get("extra") == "forbid"
        assert info.result.model_fields["job"].default == name


def test_params_refuse_unknown_keys() -> None:
    """Parameter models forbid extras (the registry renders them: tests/actors/gpu)."""
    with pytest.raises(ValueError, match="Extra inputs"):
        SieveParams.model_validate({"windw": 3})


def test_numpy_when_gpu_not_wanted() -> None:
    """prefer_gpu=False always gives numpy."""
    am = array_module.get_array_module(prefer_gpu=False)
    assert (am.name, am.xp) == ("numpy", numpy)


@pytest.mark.parametrize("failure", ["unavailable", "allocation"])
def test_broken_cupy_falls_back_to_numpy(
    failure: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A cupy without a device, or whose first allocation fails, falls back to numpy."""
    fake = types.ModuleType("cupy")
    fake.is_available = lambda: failure != "unavailable"  # type: ignore[attr-defined]

    def arange(*args: object, **kwargs: object) -> object:
        raise RuntimeError("cudaErrorInsufficientDriver")

    fake.arange = arange  # type: ignore[attr-defined]
    fake.uint64 = numpy.uint64  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", fake)
    array_module._probe_cupy.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="pipeline.array_module"):
            assert array_module.get_array_module().name == "numpy"
    finally:
        array_module._probe_cupy.cache_clear()
    assert ("cudaErrorInsufficientDriver" in caplog.text) == (failure == "allocation")


def test_working_cupy_is_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cupy that is available and allocates is returned as the array module."""
    fake = types.ModuleType("cupy")
    fake.is_available = lambda: True  # type: ignore[attr-defined]
    fake.arange = numpy.arange  # type: ignore[attr-defined]
    fake.uint64 = numpy.uint64  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cupy", fake)
    array_module._probe_cupy.cache_clear()
    try:
        am = array_module.get_array_module()
    finally:
        array_module._probe_cupy.cache_clear()
    assert (am.name, am.xp) == ("cupy", fake)


def test_cupy_is_imported_only_by_the_helper() -> None:
    """No pipeline module but array_module mentions `import cupy`."""
    root = Path(pipeline.__file__).parent
    users = [p.name for p in root.glob("*.py") if "import cupy" in p.read_text()]
    assert users == ["array_module.py"]


def test_atomic_write_leaves_old_file_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the rename fails the old content stays and no temporary file is left."""
    target = tmp_path / "a.json"
    target.write_text("old")

    def boom(self: Path, other: Path) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(target, b"new")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_read_model_names_file_and_field(tmp_path: Path) -> None:
    """A wrong field value is reported with the file, the model and the field."""
    path = tmp_path / "scorer_config.json"
    write_model(
        path, ScorerConfig(half_life=2, recent_window=3, min_match_rate=0.1, holdout=4, fitness=0)
    )
    assert read_model(path, ScorerConfig).half_life == 2
    path.write_text(path.read_text().replace('"holdout": 4', '"holdout": 0'))
    with pytest.raises(
        PipelineInputError, match=r"scorer_config.json: is not a valid ScorerConfig \(holdout: "
    ):
        read_model(path, ScorerConfig)


def test_all_is_sorted_and_exported() -> None:
    """pipeline.__all__ is sorted as ruff sorts it (CONSTANTS, Classes, functions) and exists."""

    def key(name: str) -> tuple[int, str]:
        return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)

    assert pipeline.__all__ == sorted(pipeline.__all__, key=key)
    for name in pipeline.__all__:
        assert hasattr(pipeline, name)


def test_synthetic_cli_writes_a_switching_history(tmp_path: Path) -> None:
    """`python -m pipeline.synthetic` writes the draws of the seed, then of the new seed."""
    from pipeline.history import load_history
    from pipeline.prng import FAMILIES, draw_values
    from pipeline.synthetic import main

    out = tmp_path / "h.jsonl"
    argv = ["--family", "java_lcg", "--seed", "9", "--count", "12", "--switch-at", "5"]
    assert main([*argv, "--new-seed", "10", "--out", str(out)]) == 0
    values = load_history(out).values.tolist()
    gen = FAMILIES["java_lcg"]
    assert values == draw_values(gen, 9, 5) + draw_values(gen, 10, 7)
    assert main(["--family", "minstd", "--seed", "0", "--out", str(out)]) == 2
