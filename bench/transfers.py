"""Copy and move between channels vs uploading the same file again, in-process on one root.

    python bench/transfers.py [--mib 64] [--repeat 5]

A copy hard-links the stored file and re-reads only its info part, so its cost should not
grow with the file's size the way an upload's (hash + write every byte) does. Prints medians
and the ratio copy/upload; the disk use of the destination is checked to stay at one inode.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import clean_env, median, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from repoproxy.domain import channels, transfers
    from repoproxy.domain.core import load_core
    from repoproxy.domain.packages import upload_file
    from repoproxy.testing.packages import PackageSpec, build_package

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        blob = random.Random(1).randbytes(args.mib * 1024 * 1024)
        pkg = build_package(PackageSpec("big", "1.0", files={"share/big.bin": blob}), tmp,
                            "conda")
        core = load_core({"repoproxy.root": str(tmp / "root")}, clean_env())
        channels.create_channel(core, "src")
        upload_file(core, "src", pkg)
        uploads, copies, moves = [], [], []
        for i in range(args.repeat):
            for name in (f"up{i}", f"cp{i}", f"mv{i}"):
                channels.create_channel(core, name)
            uploads.append(timed(lambda i=i: upload_file(core, f"up{i}", pkg)))
            copies.append(timed(lambda i=i: transfers.copy_package(
                core, transfers.Spec.parse("src::big"), f"cp{i}")))
            moves.append(timed(lambda i=i: transfers.move_package(
                core, transfers.Spec.parse(f"cp{i}::big"), f"mv{i}")))
        src = core.store.package_path("src", "noarch", pkg.name)
        dst = core.store.package_path(f"mv{args.repeat - 1}", "noarch", pkg.name)
        same = src.stat().st_ino == dst.stat().st_ino
        print(f"package: {pkg.stat().st_size / 2**20:.1f} MiB, {args.repeat} runs each")
        print(f"upload  median {median(uploads) * 1000:8.1f} ms")
        print(f"copy    median {median(copies) * 1000:8.1f} ms  "
              f"ratio copy/upload {median(copies) / median(uploads):.3f}")
        print(f"move    median {median(moves) * 1000:8.1f} ms  "
              f"ratio move/upload {median(moves) / median(uploads):.3f}")
        print(f"destination shares the origin's inode (no byte copied): {same}")
        core.close()


if __name__ == "__main__":
    main()
