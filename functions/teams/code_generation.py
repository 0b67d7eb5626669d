"""Code-generation team: writing, reviewing and explaining code."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the code-generation team: senior software engineers fluent in Python, TypeScript/JavaScript,
Go, Java, Rust, C#, SQL and shell, and in testing, API design, performance and secure coding (OWASP).
You write code that is correct, readable, tested and idiomatic for its language and framework.
When you answer:
- Give complete, runnable code rather than fragments, with the imports and dependencies it needs.
- Prefer the standard library and well-maintained dependencies; pin nothing you were not asked to.
- State assumptions about versions, inputs and environment; ask only when a guess would be risky.
- Handle errors and edge cases explicitly, validate untrusted input, and never hard-code secrets.
- Include tests (or a test plan) and explain non-obvious decisions briefly after the code.
When reviewing, be specific: quote the line, explain the bug or risk, and show the fix.
You refuse to write malware, credential stealers, exploits against systems the user does not own, code
to evade security controls or licensing, or code designed to scrape personal data unlawfully.
Do not pad answers: code first, then short explanations."""

Language = Literal[
    "python",
    "typescript",
    "javascript",
    "go",
    "java",
    "rust",
    "csharp",
    "kotlin",
    "ruby",
    "php",
    "sql",
    "bash",
    "other",
]
Severity = Literal["info", "low", "medium", "high", "critical"]


class GenerateCodeInput(BaseModel):
    """A coding task."""

    task: str = Field(min_length=1, max_length=20_000, description="What the code must do, with any examples.")
    language: Language = Field(description="The programming language.")
    framework: str | None = Field(
        default=None, max_length=200, description="Optional framework or runtime, e.g. 'FastAPI', 'Node 20'."
    )
    existing_code: str | None = Field(
        default=None, max_length=50_000, description="Optional existing code to extend or integrate with."
    )
    constraints: list[str] = Field(
        default_factory=list, max_length=15, description="Optional constraints, e.g. 'no third-party dependencies'."
    )
    include_tests: bool = Field(default=True, description="Whether to include unit tests.")


class GeneratedCode(BaseModel):
    """Generated code with tests and explanation."""

    code: str = Field(description="The complete, runnable source code.")
    language: Language = Field(description="The language of the code.")
    tests: str = Field(description="Unit tests for the code (empty if tests were not requested).")
    dependencies: list[str] = Field(max_length=20, description="Third-party packages the code needs.")
    explanation: str = Field(description="Short explanation of the approach and non-obvious decisions.")
    assumptions: list[str] = Field(max_length=10, description="Assumptions made about the task or environment.")


class ReviewCodeInput(BaseModel):
    """Code to review."""

    code: str = Field(min_length=1, max_length=50_000, description="The code or diff to review.")
    language: Language = Field(description="The programming language.")
    focus: list[Literal["correctness", "security", "performance", "readability", "testing", "style"]] = Field(
        default_factory=list, max_length=6, description="Optional review focus; empty means all."
    )
    context: str | None = Field(default=None, max_length=5_000, description="Optional context: purpose, constraints.")


class CodeIssue(BaseModel):
    """One review comment."""

    line: int = Field(ge=0, description="Line number the issue refers to (0 if it is general).")
    severity: Severity = Field(description="How serious the issue is.")
    category: Literal["correctness", "security", "performance", "readability", "testing", "style"] = Field(
        description="Kind of issue."
    )
    description: str = Field(description="What is wrong and why it matters.")
    suggestion: str = Field(description="The fix, with corrected code where short.")


class CodeReview(BaseModel):
    """A code review."""

    summary: str = Field(description="Overall assessment in a few sentences.")
    verdict: Literal["approve", "approve_with_comments", "request_changes"] = Field(description="Review verdict.")
    issues: list[CodeIssue] = Field(max_length=40, description="Issues, most severe first.")
    strengths: list[str] = Field(max_length=6, description="What is done well.")


class ExplainCodeInput(BaseModel):
    """Code to explain."""

    code: str = Field(min_length=1, max_length=50_000, description="The code to explain.")
    audience: Literal["beginner", "intermediate", "expert"] = Field(
        default="intermediate", description="Who the explanation is for."
    )


class CodeExplanation(BaseModel):
    """An explanation of code."""

    summary: str = Field(description="What the code does, in two or three sentences.")
    walkthrough: list[str] = Field(min_length=1, max_length=20, description="Step-by-step walkthrough of the logic.")
    complexity: str = Field(description="Time and space complexity, or 'not applicable'.")
    pitfalls: list[str] = Field(max_length=8, description="Bugs, edge cases or surprising behaviour to watch for.")


TEAM = Team(
    name="code-generation",
    description="Writes, reviews and explains code with tests and secure-coding practices.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="generate_code",
            description="Generate complete, runnable code (and tests) for a task in a given language.",
            input=GenerateCodeInput,
            output=GeneratedCode,
            instructions=(
                "Write complete, idiomatic, runnable code for the task in the language and framework, respecting "
                "the constraints and integrating with existing code if given. Validate inputs, handle errors, never "
                "hard-code secrets. Include unit tests if requested, list dependencies and assumptions, and keep the "
                "explanation short."
            ),
            max_tokens=8192,
        ),
        Operation(
            name="review_code",
            description="Review code for correctness, security, performance and readability.",
            input=ReviewCodeInput,
            output=CodeReview,
            instructions=(
                "Review the code, concentrating on the focus areas if given. For each issue give the line, "
                "severity, category, why it matters and a concrete fix. Give a verdict and note strengths."
            ),
            max_tokens=4096,
        ),
        Operation(
            name="explain_code",
            description="Explain what a piece of code does for a given audience.",
            input=ExplainCodeInput,
            output=CodeExplanation,
            instructions=(
                "Explain the code at the audience's level: a summary, a step-by-step walkthrough, its complexity "
                "and any pitfalls or bugs you notice."
            ),
        ),
    ),
)
