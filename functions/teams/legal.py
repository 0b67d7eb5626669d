"""Legal team: contract review, compliance checks and plain-language explanations."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the legal team: commercial lawyers experienced in contracts, data protection (GDPR, CCPA),
intellectual property, employment and corporate matters across common-law and civil-law jurisdictions.
You help people understand legal documents and risks and prepare better questions for their own lawyer.
When you answer:
- Start with the bottom line, then the analysis clause by clause or issue by issue.
- State the jurisdiction you assume and the facts you rely on; say when the answer depends on missing facts.
- Rate each issue's severity and give a concrete recommendation (accept, negotiate, reject, add a clause).
- Quote the exact contract wording you are commenting on rather than paraphrasing it loosely.
You are not a substitute for a qualified lawyer: your output is general legal information, not legal advice,
creates no lawyer-client relationship, and must be reviewed by counsel licensed in the relevant jurisdiction
before anyone relies on it for a material decision.
You refuse to draft documents intended to deceive or defraud, to hide assets, evade sanctions or regulators,
intimidate witnesses, or to obstruct justice, and you will not advise on how to break the law undetected.
Be precise and calm; prefer clarity over legalese."""

Severity = Literal["low", "medium", "high", "critical"]


class ContractReviewInput(BaseModel):
    """A contract to review and whose side we are on."""

    contract_text: str = Field(min_length=1, max_length=100_000, description="The full text of the contract.")
    our_role: str = Field(
        min_length=1, max_length=500, description="The party we represent, e.g. 'customer', 'supplier', 'licensee'."
    )
    jurisdiction: str | None = Field(default=None, max_length=200, description="Optional governing jurisdiction.")
    focus_areas: list[str] = Field(
        default_factory=list, max_length=10, description="Optional areas of concern, e.g. 'liability', 'IP', 'data'."
    )


class ContractFinding(BaseModel):
    """One issue found in the contract."""

    clause: str = Field(description="The clause reference or a short quote of the wording concerned.")
    issue: str = Field(description="What the problem is for our side.")
    severity: Severity = Field(description="How serious the issue is.")
    recommendation: str = Field(description="What to do: accept, negotiate (with suggested wording), or reject.")


class ContractReview(BaseModel):
    """A structured contract review."""

    summary: str = Field(description="What the contract does and the bottom line for our side.")
    overall_risk: Severity = Field(description="Overall risk of signing as drafted.")
    findings: list[ContractFinding] = Field(max_length=30, description="Issues found, most severe first.")
    missing_clauses: list[str] = Field(max_length=10, description="Protections one would expect but that are absent.")
    disclaimer: str = Field(description="Reminder that this is not legal advice and counsel should review it.")


class ComplianceInput(BaseModel):
    """An activity to check against applicable regulation."""

    activity: str = Field(min_length=1, max_length=10_000, description="What the business does or plans to do.")
    jurisdictions: list[str] = Field(
        min_length=1, max_length=10, description="Where it operates or has customers, e.g. 'EU', 'California'."
    )
    industry: str | None = Field(
        default=None, max_length=200, description="Optional industry, e.g. 'health', 'fintech'."
    )


class ComplianceRegime(BaseModel):
    """One law or regulation that likely applies."""

    name: str = Field(description="The law, regulation or standard, e.g. 'GDPR'.")
    why_it_applies: str = Field(description="Why the activity falls within its scope.")
    key_obligations: list[str] = Field(min_length=1, max_length=8, description="The main obligations it imposes.")
    risk_if_ignored: Severity = Field(description="Severity of non-compliance.")


class ComplianceCheck(BaseModel):
    """A first-pass compliance map."""

    regimes: list[ComplianceRegime] = Field(max_length=12, description="Likely applicable regimes.")
    gaps: list[str] = Field(max_length=10, description="Likely gaps given the description.")
    next_steps: list[str] = Field(min_length=1, max_length=8, description="Recommended next steps.")
    disclaimer: str = Field(description="Reminder that this is not legal advice and counsel should review it.")


class ClauseInput(BaseModel):
    """A clause to explain."""

    clause_text: str = Field(min_length=1, max_length=20_000, description="The clause wording.")
    audience: Literal["layperson", "business", "lawyer"] = Field(
        default="layperson", description="Who the explanation is for."
    )


class ClauseExplanation(BaseModel):
    """A plain-language explanation of a clause."""

    plain_language: str = Field(description="What the clause means, in plain words.")
    obligations: list[str] = Field(max_length=8, description="What each party must or must not do under it.")
    risks: list[str] = Field(max_length=8, description="What could go wrong for the reader.")
    questions_for_counsel: list[str] = Field(max_length=6, description="Questions worth asking a lawyer.")


TEAM = Team(
    name="legal",
    description="Contract review, compliance mapping and plain-language clause explanations (not legal advice).",
    role=ROLE,
    model="claude-opus-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="review_contract",
            description="Review a contract from one party's side and list issues with severity and fixes.",
            input=ContractReviewInput,
            output=ContractReview,
            instructions=(
                "Review the contract from our_role's perspective. Cover liability and indemnities, termination, "
                "payment, IP, confidentiality, data protection, warranties and governing law, plus any focus areas. "
                "Quote or reference each clause, rate severity, recommend concrete changes, list missing protections "
                "and include a disclaimer that this is not legal advice."
            ),
            max_tokens=4096,
        ),
        Operation(
            name="check_compliance",
            description="Map the laws and regulations likely to apply to an activity, with obligations and gaps.",
            input=ComplianceInput,
            output=ComplianceCheck,
            instructions=(
                "Identify the regimes that likely apply in the given jurisdictions and industry, why they apply and "
                "their key obligations. Flag likely gaps and next steps. Say when applicability depends on facts "
                "not given, and include a disclaimer."
            ),
        ),
        Operation(
            name="explain_clause",
            description="Explain a contract clause in plain language for a chosen audience.",
            input=ClauseInput,
            output=ClauseExplanation,
            instructions=(
                "Explain what the clause means for the audience, the obligations it creates, the risks to the "
                "reader, and the questions they should ask their lawyer. Do not overstate certainty."
            ),
        ),
    ),
)
