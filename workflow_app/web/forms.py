"""WTForms forms for the web pages. CSRF comes from Flask-WTF's ``FlaskForm``."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    EmailField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
)

from workflow_app.models.cases import CONCERN_KINDS, CONCERN_SEVERITIES
from workflow_app.models.measures import DIRECTIONS, MEASURE_KINDS, UNITS_OF_MEASURE
from workflow_app.models.roles import UNIT_KINDS

CODE_RULE = Regexp(
    r"^[A-Z0-9][A-Z0-9_-]*$",
    message="Use capital letters, digits, hyphens and underscores only (for example RTT18)",
)


class NumberField(DecimalField):
    """A decimal field whose "not a number" message says what to type."""

    def __init__(self, label=None, validators=None, not_a_number: str = "Enter a number", **kw):
        super().__init__(label, validators, places=None, **kw)
        self.not_a_number = not_a_number

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            self.data = None
            raise ValueError(self.not_a_number) from None


def optional_int(value):
    """Coerce a select's value to an id, or None for the blank choice."""
    if value in (None, "", "None"):
        return None
    return int(value)


class LoginForm(FlaskForm):
    email = EmailField(
        "E-mail address", validators=[DataRequired("Enter your e-mail address"), Length(max=254)]
    )
    password = PasswordField("Password", validators=[DataRequired("Enter your password")])
    next = HiddenField()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        "Current password", validators=[DataRequired("Enter your current password")]
    )
    new_password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password"), Length(max=200)],
        description="At least 12 characters. A few unrelated words make a good password.",
    )
    confirm = PasswordField(
        "Confirm the new password",
        validators=[
            DataRequired("Enter the new password again"),
            EqualTo("new_password", "The two new passwords do not match"),
        ],
    )


class ResetPasswordForm(FlaskForm):
    new_password = PasswordField(
        "New password",
        validators=[DataRequired("Enter a new password"), Length(max=200)],
        description="At least 12 characters.",
    )
    confirm = PasswordField(
        "Confirm the new password",
        validators=[
            DataRequired("Enter the new password again"),
            EqualTo("new_password", "The two passwords do not match"),
        ],
    )


class UnitForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired("Enter a code"), Length(max=32), CODE_RULE])
    name = StringField("Name", validators=[DataRequired("Enter a name"), Length(max=160)])
    kind = SelectField("Kind", choices=list(UNIT_KINDS.items()))
    parent_id = SelectField("Parent unit", coerce=optional_int)
    accountable_executive_id = SelectField("Accountable executive", coerce=optional_int)
    lead_id = SelectField("Lead", coerce=optional_int)
    budget_holder_id = SelectField("Budget holder", coerce=optional_int)
    framework = SelectField("Framework")
    is_active = BooleanField("Active", default=True)


class MeasureForm(FlaskForm):
    code = StringField("Code", validators=[DataRequired("Enter a code"), Length(max=40), CODE_RULE])
    name = StringField("Name", validators=[DataRequired("Enter a name"), Length(max=200)])
    domain_id = SelectField("Domain", coerce=int)
    kind = SelectField("Kind", choices=list(MEASURE_KINDS.items()))
    target = NumberField(
        "Target",
        validators=[InputRequired("Enter the target as a number")],
        not_a_number="Enter the target as a number",
    )
    direction = SelectField("Direction", choices=list(DIRECTIONS.items()))
    tolerance = NumberField(
        "Tolerance",
        not_a_number="Enter the tolerance as a number, or leave it empty",
        validators=[Optional(), NumberRange(min=0, message="Tolerance cannot be negative")],
        description="How far from target a miss still counts as amber, in the measure's units.",
    )
    unit_of_measure = SelectField("Unit of measure", choices=list(UNITS_OF_MEASURE.items()))
    owner_id = SelectField("Owner", coerce=optional_int)
    is_active = BooleanField("Active", default=True)


class PersonForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired("Enter a name"), Length(max=120)])
    email = EmailField(
        "E-mail address",
        validators=[
            DataRequired("Enter an e-mail address"),
            Email("Enter an e-mail address in the right format, like name@nhs.net"),
            Length(max=254),
        ],
    )
    job_title = StringField("Job title", validators=[Optional(), Length(max=160)])


class EditPersonForm(FlaskForm):
    name = StringField("Full name", validators=[DataRequired("Enter a name"), Length(max=120)])
    job_title = StringField("Job title", validators=[Optional(), Length(max=160)])


class GrantRoleForm(FlaskForm):
    role = SelectField("Role")


class ConfirmForm(FlaskForm):
    """An empty form: a POST button protected by CSRF."""


class SettingsForm(FlaskForm):
    notification_mode = SelectField(
        "How do you want reminders?",
        choices=[
            ("immediate", "One e-mail for each reminder, when it is due"),
            ("digest", "One digest e-mail each working day at 08:00"),
        ],
    )


class PauseDeadlineForm(FlaskForm):
    reason = TextAreaField(
        "Why is the clock stopping?",
        validators=[DataRequired("Give the reason for stopping the clock"), Length(max=2000)],
        description="For example: waiting for the external review report.",
    )


class CompleteDeadlineForm(FlaskForm):
    note = StringField("Note (optional)", validators=[Optional(), Length(max=200)])


class ConcernForm(FlaskForm):
    domain_id = SelectField("Domain", coerce=int)
    kind = SelectField("What kind of concern is it?", choices=list(CONCERN_KINDS.items()))
    severity = SelectField("How severe is it?", choices=list(CONCERN_SEVERITIES.items()))
    summary = StringField(
        "Summary", validators=[DataRequired("Summarise the concern"), Length(max=300)]
    )
    evidence = TextAreaField(
        "Evidence",
        validators=[Optional(), Length(max=10000)],
        description="Where it comes from: the report, inspection letter or incident reference.",
    )
    occurred_on = DateField(
        "When did it happen?",
        validators=[Optional()],
        description="For example 2026-10-27. Leave empty if it is a trend.",
    )


class RunReviewForm(FlaskForm):
    month = StringField(
        "Month to review",
        validators=[
            DataRequired("Enter the month to review"),
            Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", message="Enter the month as YYYY-MM, e.g. 2026-10"),
        ],
    )
