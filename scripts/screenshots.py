"""Make the README's screenshots (docs/screenshots/*.png) from the demo in chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]

Builds the demo health board in a temporary SQLite database through the migrations, runs the
monthly review that is due (as the scheduler would on `escalate demo`, so proposals await
decision), serves it on 127.0.0.1 and photographs each page below at 1280 px wide, full page,
with Debian's chromium (CHROMIUM_PATH, default /usr/bin/chromium) driven by Playwright.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

#: (file name, demo role signed in, page address, True for the whole page, False for one
#: screenful, or a height in pixels for the top of a long page). A page
#: address may name an object of the demo: "{case}" is the first case at Level 3, "{month}" the
#: latest month whose monthly review has run (YYYY-MM).
SHOTS = [
    ("executive-home.png", "executive_director", "/", True),
    ("case-timeline.png", "ceo", "/cases/{case}#timeline", False),
    # The monthly escalation overview for the Executive Team, for the latest reviewed month.
    ("monthly-report.png", "executive_director", "/reports/executive_overview/{month}", 2600),
]


def build_demo(database: Path):
    """A Flask app on ``database`` with the demo loaded and the due monthly review run."""
    os.environ["DATABASE_URL"] = f"sqlite:///{database}"
    os.environ["SCHEDULER_MODE"] = "off"
    os.environ.setdefault("RATELIMIT_ENABLED", "false")
    from flask_migrate import upgrade

    from workflow_app import create_app
    from workflow_app.demo import load_demo
    from workflow_app.extensions import db
    from workflow_app.scheduling.monthly_review import run_due_monthly_review

    app = create_app()
    with app.app_context():
        upgrade()
        load_demo()
        db.session.commit()
        run_due_monthly_review()
        db.session.commit()
    return app


def addresses(app) -> dict[str, int]:
    """Ids the page addresses in SHOTS may name."""
    import sqlalchemy as sa

    from workflow_app.extensions import db
    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.measures import MonthlyActual

    with app.app_context():
        case = db.session.scalar(
            sa.select(EscalationCase.id)
            .where(EscalationCase.level == "3")
            .order_by(EscalationCase.id)
        )
        latest_month = db.session.scalar(sa.select(sa.func.max(MonthlyActual.period)))
        db.session.remove()
    return {"case": case, "month": f"{latest_month:%Y-%m}"}


def take(app, out: Path) -> list[Path]:
    """Serve ``app`` and save each of SHOTS into ``out``."""
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from workflow_app.demo import demo_logins

    with app.app_context():
        logins = {login.role: login for login in demo_logins()}
    ids = addresses(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    saved = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            for name, role, address, full_page in SHOTS:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                login = logins[role]
                page.goto(f"{base}/auth/login")
                page.get_by_label("E-mail address").fill(login.email)
                page.get_by_label("Password").fill(login.password)
                with page.expect_navigation():
                    page.get_by_role("button", name="Sign in").click()
                page.goto(base + address.format(**ids))
                target = out / name
                if isinstance(full_page, bool):
                    page.screenshot(path=str(target), full_page=full_page)
                else:  # the top of a long page: the report runs to many screens
                    clip = {"x": 0, "y": 0, "width": 1280, "height": full_page}
                    page.screenshot(path=str(target), full_page=True, clip=clip)
                saved.append(target)
                context.close()
            browser.close()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        app = build_demo(Path(folder) / "demo.sqlite3")
        for path in take(app, args.out):
            print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
