"""The README's report picture, from a real `genforge run` on the machine at hand.

Runs the default pipeline (the README's main command) into a temporary folder, renders its index.html
in headless Chromium and writes benchmarks/results/report.png (a 1200-pixel-wide page, cut at
--height), then prints the run's summary line, the machine (CPU model and flags) and the date, for the
README's caption.

Run: python benchmarks/scripts/readme_picture.py [--height 2400]
"""

import argparse
import datetime
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from genforge.core.hardware import cpu_flags, cpu_model

HEADLESS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"]
OUT = Path(__file__).parents[1] / "results" / "report.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("needs Chromium: apt install chromium", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report"
        run = subprocess.run([str(Path(sys.executable).with_name("genforge")), "run", "--out", str(report)],
                             capture_output=True, text=True, check=True)
        subprocess.run([chromium, *HEADLESS, f"--user-data-dir={tmp}/profile", f"--window-size=1200,{args.height}",
                        f"--screenshot={OUT}", (report / "index.html").as_uri()], capture_output=True, check=True)
    summary = [line for line in run.stdout.splitlines() if "best speed-up" in line or "quality:" in line]
    flags = ", ".join(sorted(f for f in cpu_flags() if f.startswith(("amx", "avx512_bf16", "avx512_vnni", "avx2"))))
    print(f"wrote {OUT}")
    print(f"machine: {cpu_model()} ({flags}); {datetime.date.today().isoformat()}")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
