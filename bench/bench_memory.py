"""Benchmark: peak RSS of one gunicorn web worker serving the demo health board.

What it does (see bench/README.md):

1. Setup, not measured: ``escalate demo --no-serve`` in a temporary instance folder (the
   demo's SQLite database: 12 units, 18 months of data, a year of decisions, plans,
   meetings and letters).
2. ``gunicorn -w 1 wsgi:app`` on that database (development configuration, no scheduler);
   the Chief Executive, a directorate lead and the performance team sign in and request each
   main page (home, register, scorecard, decisions, proposals, deadlines, meetings,
   frameworks, audit trail, outbox, search), up to 3 of every unit, case, decision, plan,
   plan on a page, meeting and letter page linked from them, and a plan's PDF and XLSX
   downloads (rendered in the worker). Letter PDFs are made by the scheduler's sweep, not
   by the worker, so they are not part of this figure.
3. The worker's peak resident set (``VmHWM`` in /proc) after all of it, and its RSS now.

Target (issue 9): peak RSS < 200 MB.

Run: ``.venv/bin/python -m bench.bench_memory``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability.servers import GunicornServer, WebClient  # noqa: E402

TARGET_MB = 200.0
NOTE = f"target: peak RSS of a web worker < {TARGET_MB:.0f} MB (VmHWM after every main page)"
MAIN_PAGES = [
    "/",
    "/units/",
    "/units/scorecard",
    "/decisions/",
    "/proposals/",
    "/deadlines/",
    "/meetings/",
    "/frameworks/",
    "/frameworks/iqpf",
    "/admin/audit",
    "/admin/outbox",
    "/search/?q=plan",
]
DOWNLOADS = ("/export.pdf", "/on-a-page.pdf", "/export.xlsx")
LINKED = re.compile(
    r'href="(/(?:units|cases|decisions|plans|meetings|letters)/\d+(?:/on-a-page)?)"'
)


@dataclass
class MemoryResult:
    pages: int
    errors: int
    peak_pages_mb: float  # after the HTML pages only
    peak_mb: float  # after the PDF/XLSX downloads too
    rss_mb: float
    setup_s: float
    downloads: int

    @property
    def check(self) -> str:
        return "OK" if self.errors == 0 else f"FAILED ({self.errors} pages not 200)"


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def run() -> MemoryResult:
    from workflow_app.demo import demo_logins

    instance = Path(tempfile.mkdtemp(prefix="escalate-bench-memory-"))
    env = dict(os.environ, ESCALATE_INSTANCE_PATH=str(instance), SCHEDULER_MODE="off")
    env.pop("DATABASE_URL", None)
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - fixed arguments
        [str(Path(sys.executable).with_name("escalate")), "demo", "--no-serve"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    setup_s = time.perf_counter() - started
    url = f"sqlite:///{instance / 'escalate.sqlite3'}"
    server = GunicornServer(url, workers=1, log_dir=instance)
    logins = {login.role: login for login in demo_logins()}
    pages = errors = 0
    try:
        server.start()
        (worker,) = server.worker_pids()
        downloads: list[tuple[WebClient, str]] = []
        for role in ("ceo", "directorate_lead", "performance_team"):
            client = WebClient(server.base_url).sign_in(logins[role].email, logins[role].password)
            seen: dict[str, int] = {}
            links: list[str] = []
            for path in MAIN_PAGES:
                reply = client.get(path)
                pages += 1
                if reply.status not in (200, 403):  # a lead may not see every page
                    errors += 1
                    print(f"  {role} {path}: {reply.status}", file=sys.stderr)
                for link in LINKED.findall(reply.text):
                    kind = link.split("/")[1]
                    if link not in links and seen.get(kind, 0) < 3:
                        seen[kind] = seen.get(kind, 0) + 1
                        links.append(link)
            plans: list[str] = []
            for link in links:
                reply = client.get(link)
                pages += 1
                if reply.status != 200:
                    errors += 1
                    print(f"  {role} {link}: {reply.status}", file=sys.stderr)
                plans += re.findall(r'href="(/plans/\d+)"', reply.text)
            if plans:
                downloads += [(client, plans[0] + s) for s in DOWNLOADS]
        peak_pages = _status_mb(worker, "VmHWM")
        # Made in the worker (WeasyPrint, openpyxl): the plan's board-paper downloads.
        for client, path in downloads:
            reply = client.get(path)
            pages += 1
            if reply.status != 200:
                errors += 1
                print(f"  {path}: {reply.status}", file=sys.stderr)
        peak, now = _status_mb(worker, "VmHWM"), _status_mb(worker, "VmRSS")
    finally:
        server.stop()
    return MemoryResult(
        pages=pages,
        errors=errors,
        peak_pages_mb=peak_pages,
        peak_mb=peak,
        rss_mb=now,
        setup_s=setup_s,
        downloads=len(downloads),
    )


def format_table(results: list[MemoryResult]) -> str:
    header = [
        "db",
        "check",
        "requests",
        "peak RSS MB, pages",
        "peak RSS MB, + PDF/XLSX",
        "RSS after MB",
        "target",
    ]
    rows = [header]
    for r in results:
        rows.append(
            [
                "sqlite (demo)",
                r.check.split(" ")[0],
                f"{r.pages} ({r.downloads} downloads)",
                f"{r.peak_pages_mb:.0f}",
                f"{r.peak_mb:.0f}",
                f"{r.rss_mb:.0f}",
                "met" if r.peak_mb < TARGET_MB else f"not met (< {TARGET_MB:.0f})",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = []
    for i, row in enumerate(rows):
        lines.append("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> int:
    result = run()
    print(f"demo setup {result.setup_s:.0f} s (not measured)")
    print(format_table([result]))
    print("  " + NOTE)
    return 0 if result.check == "OK" else 1


if __name__ == "__main__":
    sys.exit(main())
