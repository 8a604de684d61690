"""The demo health board served once per test module, for tests that only read it.

Loading the demo takes seconds, so it is loaded once per session into a SQLite file that each
module copies; on PostgreSQL, once per module into the test database (emptied afterwards: the
other modules' tests empty it after each test, so it cannot outlive the module).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from tests.conftest import _make_app, _truncate_all
from workflow_app.demo import DemoLogin, demo_logins, load_demo
from workflow_app.extensions import db


@dataclass
class DemoSite:
    base_url: str
    app: object
    logins: dict[str, DemoLogin]

    def sign_in(self, page, role: str) -> None:
        """Sign ``page`` in as the demo person with ``role`` through the real form."""
        login = self.logins[role]
        page.goto(f"{self.base_url}/auth/login")
        page.get_by_label("E-mail address").fill(login.email)
        page.get_by_label("Password").fill(login.password)
        with page.expect_navigation():
            page.get_by_role("button", name="Sign in").click()


#: migrated template path -> the same database with the demo loaded (SQLite), made once per
#: session and shared by every module that serves the demo (a plain cache, not a fixture:
#: a fixture imported into two modules would be two fixtures, loaded twice).
_LOADED: dict[str, str] = {}


def demo_template(migrated_database: str, tmp_path_factory) -> str:
    """A SQLite file with the demo loaded, for each module to copy."""
    if migrated_database not in _LOADED:
        path = tmp_path_factory.mktemp("demo-template") / "demo.sqlite3"
        shutil.copyfile(migrated_database, path)
        app = _make_app(f"sqlite:///{path}")
        with app.app_context():
            load_demo()
            db.session.commit()
            db.session.remove()
            db.engine.dispose()
        _LOADED[migrated_database] = str(path)
    return _LOADED[migrated_database]


@contextmanager
def demo_site(db_kind: str, migrated_database: str, tmp_path_factory) -> Iterator[DemoSite]:
    """Serve the demo from a fresh database on 127.0.0.1 in a thread."""
    if db_kind == "postgres":
        url = migrated_database
    else:
        path = tmp_path_factory.mktemp("demo-site") / "demo.sqlite3"
        shutil.copyfile(demo_template(migrated_database, tmp_path_factory), path)
        url = f"sqlite:///{path}"
    app = _make_app(url)
    with app.app_context():
        if db_kind == "postgres":
            load_demo()
            db.session.commit()
        logins = {login.role: login for login in demo_logins()}
        db.session.remove()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield DemoSite(f"http://127.0.0.1:{server.server_port}", app, logins)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        if db_kind == "postgres":
            _truncate_all(app)


@pytest.fixture(scope="module", name="site")
def site_fixture(db_kind, migrated_database, tmp_path_factory) -> Iterator[DemoSite]:
    """The demo served once per module; import it into a test module to use it. Tests using
    it only read (or sign in and out): none may change the demo's data. Not once per session:
    on PostgreSQL the other modules' tests empty the shared test database after each test."""
    with demo_site(db_kind, migrated_database, tmp_path_factory) as running:
        yield running
