"""Search: one GET form across units, cases, measures and plans, with filters, pages and
downloads (``?format=csv|xlsx`` exports every matching row, not only the page shown).

The free-text field is named ``q``, so a header search box can send people here with
``<form action="{{ url_for('search.index') }}"><input name="q">``.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms import BooleanField, DateField, Form, HiddenField, SelectField, StringField
from wtforms.validators import AnyOf, Length, Optional

from workflow_app.services import search as search_service
from workflow_app.services.list_export import export_list, format_from_request
from workflow_app.services.search import KINDS, Criteria

bp = Blueprint("search", __name__, url_prefix="/search")


class DayField(DateField):
    """A date typed as YYYY-MM-DD or DD/MM/YYYY (UK order). A date that does
    not parse is kept in ``invalid`` and reported by the form, which knows the label."""

    invalid: str | None = None

    def __init__(self, label=None, validators=None, **kwargs):
        super().__init__(label, validators, format=["%Y-%m-%d", "%d/%m/%Y"], **kwargs)

    def process_formdata(self, valuelist):
        self.data, self.invalid = None, None
        text = valuelist[0].strip() if valuelist else ""
        if not text:
            return
        for fmt in self.format:
            try:
                self.data = datetime.strptime(text, fmt).date()
                return
            except ValueError:
                continue
        self.invalid = text


class SearchForm(Form):
    """The search form. GET only, nothing changes, so no CSRF token."""

    q = StringField(
        "Search",
        validators=[Length(max=200, message="Search for at most 200 characters")],
        description="Unit code or name, measure code or name, track or plan title.",
    )
    type = HiddenField()
    unit_kind = SelectField("Kind of unit", validate_choice=False)
    framework = SelectField("Framework", validate_choice=False)
    track = SelectField("Track", validate_choice=False)
    level = SelectField("Level", validate_choice=False)
    domain = SelectField("Domain", validate_choice=False)
    rag = SelectField("Latest month's RAG", validate_choice=False)
    plan_status = SelectField("Plan status", validate_choice=False)
    date_from = DayField("From", validators=[Optional()])
    date_to = DayField("To", validators=[Optional()])
    inactive = BooleanField("Include inactive units")
    sort = SelectField("Sort by", validate_choice=False)

    def setup(self, kind: str) -> None:
        """Fill the choices (with an "any" first) and the checks for ``kind``."""
        self.kind = kind
        options = {
            "unit_kind": ("Any kind", search_service.unit_kind_choices(), "kind of unit"),
            "framework": ("Any framework", search_service.framework_choices(), "framework"),
            "track": ("Any track", search_service.track_choices(), "track"),
            "level": ("Any level", search_service.level_choices(), "level"),
            "domain": ("Any domain", search_service.domain_choices(), "domain"),
            "rag": ("Any", list(search_service.RAG_CHOICES.items()), "RAG status"),
            "plan_status": ("Any status", search_service.plan_status_choices(), "plan status"),
        }
        for name, (blank, choices, what) in options.items():
            field = getattr(self, name)
            field.choices = [("", blank), *choices]
            field.validators = [
                Optional(),
                AnyOf([key for key, _ in choices], message=f"Choose a {what} from the list"),
            ]
        self.sort.choices = search_service.sort_choices(kind)
        self.sort.validators = [
            Optional(),
            AnyOf(
                [key for key, _ in self.sort.choices], message="Choose a sort order from the list"
            ),
        ]
        meaning = search_service.DATE_MEANING.get(kind, "Date")
        self.date_from.label.text = f"{meaning} on or after"
        self.date_to.label.text = f"{meaning} on or before"

    FILTER_FIELDS = (
        "unit_kind",
        "framework",
        "track",
        "level",
        "domain",
        "rag",
        "plan_status",
        "date_from",
        "date_to",
        "inactive",
    )

    def validate(self, extra_validators=None) -> bool:
        super().validate(extra_validators)
        applicable = search_service.FILTERS[self.kind]
        for name in self.FILTER_FIELDS:
            if name not in applicable:
                # A filter the page does not show (left in the URL from another tab) is
                # ignored, not reported against a field nobody can see.
                getattr(self, name).errors = []
        for day in (self.date_from, self.date_to):
            if day.invalid is not None and day.name in applicable:
                day.errors = [
                    *day.errors,
                    f"Enter a real date for '{day.label.text}', for example 1/4/2026",
                ]
        dates = self.date_from.data, self.date_to.data
        if "date_to" in applicable and all(dates) and dates[1] < dates[0]:
            self.date_to.errors = [
                *self.date_to.errors,
                "The 'to' date must be the same as or after the 'from' date",
            ]
        return not any(field.errors for field in self)

    def criteria(self, kind: str) -> Criteria:
        """What the form asks for, keeping only the filters that apply to ``kind``."""
        values = {
            name: getattr(self, name).data or ""
            for name in self.FILTER_FIELDS
            if name not in ("date_from", "date_to", "inactive")
        }
        values["date_from"] = self.date_from.data
        values["date_to"] = self.date_to.data
        values["inactive"] = bool(self.inactive.data)
        used = {
            name: value for name, value in values.items() if name in search_service.FILTERS[kind]
        }
        return Criteria(kind=kind, q=(self.q.data or "").strip(), sort=self.sort.data or "", **used)


def _kind() -> str:
    kind = request.args.get("type", "units")
    return kind if kind in KINDS else "units"


def _page() -> int:
    return max(request.args.get("page", 1, type=int) or 1, 1)


def _url(**changes) -> str:
    args = request.args.to_dict(flat=False)
    args.pop("format", None)
    for key, value in changes.items():
        if value is None:
            args.pop(key, None)
        else:
            args[key] = value
    return url_for("search.index", **args)


@bp.app_template_global("download_url")
def download_url(fmt: str) -> str:
    """The current page's URL with ``format=fmt`` and without ``page``: the whole list."""
    args = request.args.to_dict(flat=False)
    args.pop("page", None)
    args["format"] = fmt
    return url_for(request.endpoint, **(request.view_args or {}), **args)


@bp.route("/")
@login_required
def index():
    """Search and filter; with ``?format=csv|xlsx`` download every matching row."""
    fmt = format_from_request()
    kind = _kind()
    form = SearchForm(request.args)
    form.setup(kind)
    context = {
        "form": form,
        "kind": kind,
        "kinds": KINDS,
        "results": None,
        "counts": {},
        "columns": search_service.COLUMNS[kind],
        "link_column": search_service.LINK_COLUMN[kind],
        "filters": search_service.FILTERS[kind],
        "tab_url": lambda other: url_for("search.index", type=other, q=form.q.data or None),
        "page_url": lambda page: _url(page=page),
    }
    valid = form.validate()
    context["filtering"] = not valid or any(
        request.args.get(name) for name in (*search_service.FILTERS[kind], "sort")
    )
    if not valid:
        # Nothing is searched with a bad filter: the page says what to correct.
        return render_template("search/index.html", **context), 400
    criteria = form.criteria(kind)
    if fmt:
        results = search_service.search(current_user, criteria, page=None)
        columns = search_service.COLUMNS[kind]
        return export_list(f"search-{kind}", columns, results.hits, fmt).as_response()
    results = search_service.search(current_user, criteria, page=_page())
    if criteria.q:
        # The other kinds' counts for the same words, so the tabs say where the matches are.
        for other in KINDS:
            context["counts"][other] = (
                results.total
                if other == kind
                else search_service.count(current_user, Criteria(kind=other, q=criteria.q))
            )
    context.update(criteria=criteria, results=results)
    return render_template("search/index.html", **context)
