"""Quality-assurance team: test cases, test plans and bug-report triage."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the quality-assurance team: test engineers and QA leads experienced in manual and automated
testing of web, mobile, API and data systems, risk-based testing, and test design techniques (equivalence
partitioning, boundary values, decision tables, state transitions, pairwise).
When you answer:
- Organise by risk: test what is most likely to fail and most costly if it does, first.
- Write test cases that are specific and reproducible: preconditions, exact steps, data, expected result.
- Cover negative paths, boundaries, permissions, accessibility and non-functional aspects, not just the happy path.
- State assumptions about requirements; list ambiguities as questions instead of guessing.
- Show how coverage and any estimates (effort, defect rates) were derived.
You report quality honestly: you do not mark untested things as passed or soften severity to hit a release date,
and you say when the evidence is not enough to sign off.
You refuse to help test systems the user is not authorised to test, or to use real personal data where
synthetic test data would do. Be concise and structured; testers will execute this as written."""

Priority = Literal["low", "medium", "high", "critical"]
TestType = Literal[
    "functional", "negative", "boundary", "integration", "performance", "security", "accessibility", "usability"
]


class TestCasesInput(BaseModel):
    """A feature and its requirements to write test cases for."""

    feature: str = Field(min_length=1, max_length=5_000, description="The feature under test.")
    requirements: str = Field(
        min_length=1, max_length=20_000, description="Requirements or acceptance criteria, as written."
    )
    test_types: list[TestType] = Field(
        default_factory=list, max_length=8, description="Optional kinds of tests to include; empty means choose."
    )
    max_cases: int = Field(default=12, ge=1, le=50, description="Maximum number of test cases.")


class TestCase(BaseModel):
    """One test case."""

    id: str = Field(description="Identifier, e.g. 'TC-001'.")
    title: str = Field(description="What the case verifies.")
    type: TestType = Field(description="The kind of test.")
    priority: Priority = Field(description="Execution priority, by risk.")
    preconditions: list[str] = Field(max_length=6, description="State required before the steps.")
    steps: list[str] = Field(min_length=1, max_length=15, description="Exact steps, including test data.")
    expected_result: str = Field(description="The observable expected result.")


class TestCases(BaseModel):
    """Test cases for a feature."""

    cases: list[TestCase] = Field(min_length=1, max_length=50, description="The test cases, highest priority first.")
    coverage_notes: str = Field(description="Which requirements each group of cases covers and what is left out.")
    open_questions: list[str] = Field(max_length=10, description="Ambiguities in the requirements.")


class TestPlanInput(BaseModel):
    """A release or project to plan testing for."""

    project: str = Field(min_length=1, max_length=10_000, description="What is being built or changed.")
    scope: str | None = Field(default=None, max_length=5_000, description="Optional scope notes.")
    deadline: str | None = Field(default=None, max_length=100, description="Optional release date, e.g. '2025-09-30'.")
    team_size: int | None = Field(default=None, ge=1, le=500, description="Optional number of testers.")


class TestPlan(BaseModel):
    """A risk-based test plan."""

    objectives: list[str] = Field(min_length=1, max_length=6, description="What testing must establish.")
    in_scope: list[str] = Field(min_length=1, max_length=15, description="What will be tested.")
    out_of_scope: list[str] = Field(max_length=10, description="What will not be tested, and why.")
    strategy: str = Field(description="Levels, types, automation approach and environments.")
    risks: list[str] = Field(max_length=10, description="Product and project risks that drive priorities.")
    exit_criteria: list[str] = Field(min_length=1, max_length=8, description="Conditions for sign-off.")


class BugReportInput(BaseModel):
    """A bug report to assess."""

    report: str = Field(min_length=1, max_length=20_000, description="The bug report as filed.")
    product_context: str | None = Field(default=None, max_length=5_000, description="Optional product context.")


class BugAssessment(BaseModel):
    """An assessment of a bug report."""

    title: str = Field(description="A clear, specific title for the bug.")
    severity: Priority = Field(description="Impact of the bug on users.")
    reproducible_from_report: bool = Field(description="Whether the report has enough detail to reproduce it.")
    steps_to_reproduce: list[str] = Field(max_length=15, description="Cleaned-up steps to reproduce.")
    missing_information: list[str] = Field(max_length=8, description="What the reporter should add.")
    possible_duplicates_keywords: list[str] = Field(max_length=6, description="Keywords to search for duplicates.")


TEAM = Team(
    name="quality-assurance",
    description="Test-case design, risk-based test plans and bug-report triage.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="write_test_cases",
            description="Write specific, reproducible test cases for a feature from its requirements.",
            input=TestCasesInput,
            output=TestCases,
            instructions=(
                "Write up to max_cases test cases covering the requirements with happy, negative and boundary "
                "paths (and the requested test types), each with preconditions, exact steps with data and an "
                "expected result. Prioritise by risk, explain coverage and list ambiguities."
            ),
            max_tokens=4096,
        ),
        Operation(
            name="create_test_plan",
            description="Create a risk-based test plan for a release or project.",
            input=TestPlanInput,
            output=TestPlan,
            instructions=(
                "Write a concise test plan: objectives, scope in and out, strategy (levels, types, automation, "
                "environments), risks driving priorities and exit criteria, sized to the deadline and team if given."
            ),
        ),
        Operation(
            name="assess_bug_report",
            description="Assess a bug report's severity and completeness and clean up its reproduction steps.",
            input=BugReportInput,
            output=BugAssessment,
            instructions=(
                "Rewrite the title to be specific, rate severity by user impact, decide whether the report is "
                "reproducible as written, clean up the steps, and list missing details and duplicate-search keywords."
            ),
        ),
    ),
)
