"""numpy's ``SeedSequence`` hash, compiled and vectorised over replicates.

``run_seed(root, world, k)`` is ``SeedSequence(root, spawn_key=(world, k))``'s first
64-bit word (halved to fit int64). Building one SeedSequence object costs ~9 µs, a
noticeable share of a rollout at thousands of rollouts per second, so the seeds of a
batch are computed here in one compiled call. The hash is M. E. O'Neill's
``seed_seq_fe`` as numpy's ``numpy/random/bit_generator.pyx`` documents it (entropy
words mixed into a pool of four 32-bit words, then hashed out); tests check it equals
``numpy.random.SeedSequence`` on many inputs, so the seeds are the very same numbers.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_M32 = np.uint64(0xFFFFFFFF)
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_L = np.uint64(0xCA01F9DD)
_MIX_R = np.uint64(0x4973F715)
_SHIFT = np.uint64(16)
_POOL = 4


@nb.njit(cache=True)
def _hashmix(value, h):
    """One hashmix step; returns (mixed value, next hash constant)."""
    value = (value ^ h) & _M32
    h = (h * _MULT_A) & _M32
    value = (value * h) & _M32
    return value ^ (value >> _SHIFT), h


@nb.njit(cache=True)
def _mix(x, y):
    r = (_MIX_L * x - _MIX_R * y) & _M32
    return r ^ (r >> _SHIFT)


@nb.njit(cache=True)
def _words(x, out, at):
    """The 32-bit words of a non-negative integer, least significant first (0 -> [0])."""
    if x == 0:
        out[at] = 0
        return at + 1
    while x > 0:
        out[at] = x & _M32
        x >>= np.uint64(32)
        at += 1
    return at


@nb.njit(cache=True)
def _seeds(root_words, world, replicates, out):
    entropy = np.zeros(_POOL + 4, dtype=np.uint64)
    pool = np.zeros(_POOL, dtype=np.uint64)
    words = np.zeros(2, dtype=np.uint64)
    for r in range(replicates.shape[0]):
        # Assembled entropy: the root's words padded to the pool size, then the spawn key's.
        entropy[:] = 0
        for j in range(root_words.shape[0]):
            entropy[j] = root_words[j]
        n = max(root_words.shape[0], _POOL)
        n = _words(world, entropy, n)
        n = _words(replicates[r], entropy, n)
        h = _INIT_A
        for i in range(_POOL):
            pool[i], h = _hashmix(entropy[i], h)
        for i_src in range(_POOL):
            for i_dst in range(_POOL):
                if i_src != i_dst:
                    v, h = _hashmix(pool[i_src], h)
                    pool[i_dst] = _mix(pool[i_dst], v)
        for i_src in range(_POOL, n):
            for i_dst in range(_POOL):
                v, h = _hashmix(entropy[i_src], h)
                pool[i_dst] = _mix(pool[i_dst], v)
        # generate_state(1, uint64): two 32-bit words, little-endian.
        h = _INIT_B
        for i in range(2):
            v = (pool[i % _POOL] ^ h) & _M32
            h = (h * _MULT_B) & _M32
            v = (v * h) & _M32
            words[i] = v ^ (v >> _SHIFT)
        out[r] = np.int64((words[0] | (words[1] << np.uint64(32))) >> np.uint64(1))
    return out


def run_seeds(root: int, world: int, replicates: np.ndarray | list[int]) -> np.ndarray:
    """``run_seed(root, world, k)`` for every ``k`` of ``replicates``, as int64."""
    if root < 0 or world < 0 or root >= 2**128 or world >= 2**64:
        raise ValueError("seeds and spawn keys must be non-negative (root < 2**128, world < 2**64)")
    words, x = [], int(root)
    while True:
        words.append(x & 0xFFFFFFFF)
        x >>= 32
        if x == 0:
            break
    reps = np.asarray(replicates, dtype=np.int64)
    if len(reps) and reps.min() < 0:
        raise ValueError("replicates must be non-negative")
    out = np.empty(len(reps), dtype=np.int64)
    return _seeds(np.array(words, dtype=np.uint64), np.uint64(world), reps.astype(np.uint64), out)
