"""The PRNG registry: four families, each a scalar reference and a vectorised batch version.

The definitions are exact so that outside tools can generate matching draws (issue 6):

- `lcg32`: s <- (1103515245*s + 12345) mod 2^31, output s;
- `minstd`: s <- 48271*s mod (2^31 - 1), output s (seed 0 invalid);
- `xorshift32`: s ^= s << 13; s ^= s >> 17; s ^= s << 5 (mod 2^32), output s (seed 0 invalid);
- `java_lcg`: s = (seed XOR 0x5DEECE66D) mod 2^48; s <- (0x5DEECE66D*s + 0xB) mod 2^48,
  output s >> 16.

Draw i advances the generator `skip + 1` times from where draw i-1 left it and takes
`output mod mod`. Batch versions hold states as uint64 arrays of any `xp` (numpy or cupy).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

Array = Any
"""An xp array (numpy or cupy); typed loosely because the namespace is chosen at run time."""

_M31 = (1 << 31) - 1
_M32 = (1 << 32) - 1
_M48 = (1 << 48) - 1
_JAVA_MULT = 0x5DEECE66D


class PrngFamily(ABC):
    """A PRNG family: valid seeds, one step, one output; scalar and batch forms agree exactly."""

    name: ClassVar[str]
    seed_min: ClassVar[int]
    """Smallest valid seed."""
    seed_end: ClassVar[int]
    """One past the largest valid seed."""

    def check_seed(self, seed: int) -> None:
        """Raise ValueError when `seed` is outside [seed_min, seed_end)."""
        if not self.seed_min <= seed < self.seed_end:
            msg = f"{self.name}: seed {seed} outside [{self.seed_min}, {self.seed_end})"
            raise ValueError(msg)

    @abstractmethod
    def init(self, seed: int) -> int:
        """The state before the first step."""

    @abstractmethod
    def step(self, state: int) -> int:
        """The next state."""

    def output(self, state: int) -> int:
        """The output of a state (the state itself unless the family says otherwise)."""
        return state

    def init_batch(self, xp: Any, seeds: Array) -> Array:
        """Initial states of a batch of seeds (uint64)."""
        return xp.asarray(seeds, dtype=xp.uint64)

    @abstractmethod
    def step_batch(self, xp: Any, states: Array) -> Array:
        """The next states of a batch (a new array)."""

    def output_batch(self, xp: Any, states: Array) -> Array:
        """The outputs of a batch of states."""
        del xp
        return states


class Lcg32(PrngFamily):
    """The classic ANSI C LCG modulo 2^31."""

    name = "lcg32"
    seed_min = 0
    seed_end = 1 << 31

    def init(self, seed: int) -> int:
        """The seed is the state."""
        self.check_seed(seed)
        return seed

    def step(self, state: int) -> int:
        """s <- (1103515245*s + 12345) mod 2^31."""
        return (1103515245 * state + 12345) & _M31

    def step_batch(self, xp: Any, states: Array) -> Array:
        """Batch step; 1103515245*s < 2^62 so uint64 is exact."""
        del xp
        out = states * 1103515245  # in place from here: one allocation per step, not three
        out += 12345
        out &= _M31
        return out


class Minstd(PrngFamily):
    """Park and Miller's minimal standard generator (multiplier 48271)."""

    name = "minstd"
    seed_min = 1
    seed_end = _M31

    def init(self, seed: int) -> int:
        """The seed is the state (0 would stay 0 forever, so it is invalid)."""
        self.check_seed(seed)
        return seed

    def step(self, state: int) -> int:
        """s <- 48271*s mod (2^31 - 1)."""
        return (48271 * state) % _M31

    def step_batch(self, xp: Any, states: Array) -> Array:
        """Batch step; 48271*s < 2^47 so uint64 is exact."""
        del xp
        out = states * 48271
        out %= _M31
        return out


class Xorshift32(PrngFamily):
    """Marsaglia's 32-bit xorshift with shifts (13, 17, 5)."""

    name = "xorshift32"
    seed_min = 1
    seed_end = 1 << 32

    def init(self, seed: int) -> int:
        """The seed is the state (0 is a fixed point, so it is invalid)."""
        self.check_seed(seed)
        return seed

    def step(self, state: int) -> int:
        """s ^= s << 13; s ^= s >> 17; s ^= s << 5, all mod 2^32."""
        state ^= (state << 13) & _M32
        state ^= state >> 17
        state ^= (state << 5) & _M32
        return state

    def step_batch(self, xp: Any, states: Array) -> Array:
        """Batch step on uint64 lanes masked to 32 bits after each left shift."""
        del xp
        tmp = states << 13
        tmp &= _M32
        out = states ^ tmp
        xp_shift = out >> 17
        out ^= xp_shift
        tmp = out << 5
        tmp &= _M32
        out ^= tmp
        return out


class JavaLcg(PrngFamily):
    """java.util.Random's 48-bit LCG; seeds are taken mod 2^48 as Java does."""

    name = "java_lcg"
    seed_min = 0
    seed_end = 1 << 48

    def init(self, seed: int) -> int:
        """s = (seed XOR 0x5DEECE66D) mod 2^48 (Java's initial scramble)."""
        self.check_seed(seed)
        return (seed ^ _JAVA_MULT) & _M48

    def step(self, state: int) -> int:
        """s <- (0x5DEECE66D*s + 0xB) mod 2^48."""
        return (_JAVA_MULT * state + 0xB) & _M48

    def output(self, state: int) -> int:
        """The top 32 of the 48 bits, as Random.next(32) (read as unsigned)."""
        return state >> 16

    def init_batch(self, xp: Any, seeds: Array) -> Array:
        """Batch scramble."""
        return (xp.asarray(seeds, dtype=xp.uint64) ^ _JAVA_MULT) & _M48

    def step_batch(self, xp: Any, states: Array) -> Array:
        """Batch step: the uint64 product wraps mod 2^64; 2^48 divides 2^64, so masking is exact."""
        del xp
        out = states * _JAVA_MULT
        out += 0xB
        out &= _M48
        return out

    def output_batch(self, xp: Any, states: Array) -> Array:
        """Batch output: the top 32 bits."""
        del xp
        return states >> 16


FAMILIES: dict[str, PrngFamily] = {
    family.name: family for family in (Lcg32(), Minstd(), Xorshift32(), JavaLcg())
}
"""Every family by name, in a fixed order."""


def get_family(name: str) -> PrngFamily:
    """The family called `name`; ValueError naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        msg = f"unknown PRNG family {name!r}; known: {', '.join(FAMILIES)}"
        raise ValueError(msg) from None


def draw_values(
    family: PrngFamily, seed: int, count: int, skip: int = 0, mod: int = 1000
) -> list[int]:
    """The first `count` draws of `seed` (scalar reference)."""
    state = family.init(seed)
    values: list[int] = []
    for _ in range(count):
        for _ in range(skip + 1):
            state = family.step(state)
        values.append(family.output(state) % mod)
    return values


def advance_batch(family: PrngFamily, xp: Any, states: Array, skip: int) -> Array:
    """Advance a batch of states by one draw (`skip + 1` steps)."""
    for _ in range(skip + 1):
        states = family.step_batch(xp, states)
    return states


def draw_matrix(
    family: PrngFamily, xp: Any, seeds: Array, count: int, skip: int = 0, mod: int = 1000
) -> Array:
    """The first `count` draws of every seed in a batch: an array of shape (len(seeds), count)."""
    states = family.init_batch(xp, seeds)
    out = xp.empty((states.shape[0], count), dtype=xp.uint64)
    for i in range(count):
        states = advance_batch(family, xp, states, skip)
        out[:, i] = family.output_batch(xp, states) % mod
    return out
