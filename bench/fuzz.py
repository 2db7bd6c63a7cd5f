"""A long fuzzing run of the archive reader and the ingest checks, without pytest.

    python bench/fuzz.py [--cases 5000] [--seed N] [--only truncated mutated ...]

The fuzzers of ``tests/unit/test_fuzz_archive.py`` (:mod:`repoproxy.testing.fuzz`) with
more cases (``--cases``, or the ``FUZZ_CASES`` environment variable; CI runs 200) and a
random seed, printed so a failure can be replayed with ``--seed``. Every input must end
accepted (and consistent) or refused with a RepoproxyError. Prints cases, outcomes and time
per fuzzer; exits 1 and prints the shrunk failing input when one is found.

The API fuzz (schemathesis) runs longer the same way from pytest:
``FUZZ_MAX_EXAMPLES=300 python -m pytest tests/e2e/test_schemathesis.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from repoproxy.testing.fuzz import FUZZERS, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=int(os.environ.get("FUZZ_CASES", "5000")),
                        help="cases per fuzzer (default: FUZZ_CASES or 5000)")
    parser.add_argument("--seed", type=int, default=None,
                        help="replay a run (default: a random seed, printed)")
    parser.add_argument("--only", nargs="+", choices=sorted(FUZZERS), default=sorted(FUZZERS))
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(f"seed {seed}, {args.cases} cases per fuzzer (replay: --seed {seed})")
    work = Path(tempfile.mkdtemp(prefix="repoproxy-fuzz-"))
    failed = False
    try:
        for name in args.only:
            start = time.perf_counter()
            try:
                outcomes = run(FUZZERS[name], work / name, args.cases, seed=seed)
            except Exception:
                failed = True
                print(f"{name:16} FAILED")
                traceback.print_exc()
                continue
            seconds = time.perf_counter() - start
            total = sum(outcomes.values())
            print(f"{name:16} {total:6} cases  {outcomes['accepted']:6} accepted  "
                  f"{outcomes['refused']:6} refused  {seconds:7.1f} s  "
                  f"({total / seconds:.0f} cases/s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
