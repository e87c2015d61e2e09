"""The reference pipeline: small but real PRNG-analysis jobs (steps 1-6 and selfplay)."""

from pipeline.array_module import ArrayModule as ArrayModule
from pipeline.array_module import get_array_module as get_array_module
from pipeline.jobs import JOBS as JOBS
from pipeline.jobs import JobInfo as JobInfo
from pipeline.prng import FAMILIES as FAMILIES
from pipeline.prng import PrngFamily as PrngFamily

__all__ = ["FAMILIES", "JOBS", "ArrayModule", "JobInfo", "PrngFamily", "get_array_module"]
