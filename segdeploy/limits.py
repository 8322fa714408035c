"""Bounds on numeric settings, shared by the library's config checks and the CLI's option ranges."""

# A thread pool is created at once: a typo such as 100000 would hang the machine, 10**20 overflows the runtimes.
MAX_THREADS = 1024
# Seeds reach numpy (non-negative) and torch (64-bit); 32 bits is what every one of them takes.
SEED_MAX = 2**32 - 1
