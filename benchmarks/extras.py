"""The bench's other steps: exports of the largest org, the API-call scripts, the machine.

Each step returns plain figures for ``bench/results.json``; the CLI steps run ``roe`` itself in a
subprocess (``python -m roe_cli.cli``), so they time what a user waits for.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
SCRIPT_TIMEOUT = 1800


def machine() -> dict[str, Any]:
    """Cores, RAM, CPU model and the versions the figures depend on."""
    import sqlalchemy

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        pass
    return {"cores": os.cpu_count(), "ram_gib": round(ram, 1) if ram else None, "cpu": cpu,
            "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "sqlalchemy": sqlalchemy.__version__}


def roe(db: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "roe_cli.cli", "--db", str(db), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def bench_exports(db: Path) -> dict[str, Any]:
    """Seconds to write all findings of the mirror to CSV and Parquet (``roe export findings``),
    and the seconds and bytes of ``roe report --html`` (the last 12 runs' review page)."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="roe-bench-export-") as tmp:
        for fmt in ("csv", "parquet"):
            path = Path(tmp) / f"findings.{fmt}"
            started = time.perf_counter()
            proc = roe(db, "export", "findings", "-o", str(path))
            took = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"roe export findings ({fmt}) failed: {proc.stderr.strip()[-500:]}")
            out[fmt] = {"seconds": round(took, 2), "bytes": path.stat().st_size}
        out["findings"] = _findings(db)
        path = Path(tmp) / "report.html"  # the weekly review page (roe report --html)
        started = time.perf_counter()
        proc = roe(db, "report", "--html", str(path))
        took = time.perf_counter() - started
        if proc.returncode != 0 or not path.exists():
            raise RuntimeError(f"roe report --html failed: {proc.stderr.strip()[-500:]}")
        out["report_html"] = {"seconds": round(took, 2), "bytes": path.stat().st_size}
    return out


def _findings(db: Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM findings").fetchone()[0]
    finally:
        conn.close()


def run_script(name: str, *args: str) -> dict[str, Any]:
    """Run ``benchmarks/<name>`` as a subprocess; its figures (``--json``, when it takes it) or its
    printed lines, its exit status and seconds. A script that fails is reported, never fatal."""
    script = HERE / name
    with tempfile.NamedTemporaryFile(prefix="roe-bench-", suffix=".json", delete=False) as tmp:
        out = Path(tmp.name)
    takes_json = "--json" in script.read_text()
    cmd = [sys.executable, str(script), *args, *(["--json", str(out)] if takes_json else [])]
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT)
    except subprocess.TimeoutExpired:
        out.unlink(missing_ok=True)
        return {"ok": False, "error": f"no result after {SCRIPT_TIMEOUT} s"}
    took = time.perf_counter() - started
    sys.stdout.write(proc.stdout)
    result: dict[str, Any] = {"ok": proc.returncode == 0, "exit_status": proc.returncode,
                              "seconds": round(took, 1)}
    if proc.returncode != 0:
        result["error"] = proc.stderr.strip()[-1000:]
        print(f"   {name} FAILED (exit status {proc.returncode}); going on.\n{result['error']}")
    try:
        text = out.read_text()
        result["figures"] = json.loads(text) if text else None
    except (OSError, ValueError):
        result["figures"] = None
    finally:
        out.unlink(missing_ok=True)
    if result["figures"] is None:  # a script that prints its figures as JSON (writeback_calls.py)
        try:
            result["figures"] = json.loads(proc.stdout) if proc.stdout.strip() else None
        except ValueError:
            result["output"] = proc.stdout.splitlines()
    return result
