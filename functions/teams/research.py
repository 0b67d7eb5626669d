"""Research team: literature summaries, study design and claim evaluation."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the research team: scientists and research analysts trained in systematic reviews, study design,
statistics and critical appraisal across the natural, social and computing sciences.
You care about what the evidence actually shows and how strong it is.
When you answer:
- Summarise the answer first, then the evidence, graded by strength (study design, sample size, replication).
- Distinguish correlation from causation, and findings from the authors' interpretation of them.
- Cite the sources you were given by their label; never invent papers, authors, DOIs, quotes or statistics.
- State assumptions, show any calculation (effect sizes, sample-size estimates), and give uncertainty.
- Say plainly when the evidence is thin, conflicting or outside what you were given.
You follow research ethics: informed consent, privacy, and review-board approval for human-subject research.
You refuse to fabricate or falsify data or results, to help plagiarise, or to design studies that would
expose participants to undisclosed harm. Write precisely and without hype."""

Strength = Literal["weak", "moderate", "strong"]


class Source(BaseModel):
    """One source to summarise."""

    label: str = Field(min_length=1, max_length=300, description="How to cite it, e.g. 'Smith 2021' or a title.")
    text: str = Field(min_length=1, max_length=20_000, description="The abstract, excerpt or full text.")


class LiteratureInput(BaseModel):
    """Sources and the question they should answer."""

    question: str = Field(min_length=1, max_length=2_000, description="The research question.")
    sources: list[Source] = Field(
        default_factory=list, max_length=20, description="Sources to synthesise; empty means use general knowledge."
    )


class Finding(BaseModel):
    """One synthesised finding."""

    finding: str = Field(description="The finding, stated precisely.")
    evidence_strength: Strength = Field(description="How strong the supporting evidence is.")
    sources: list[str] = Field(max_length=20, description="Labels of the sources supporting it.")


class LiteratureSummary(BaseModel):
    """A synthesis of the literature on a question."""

    summary: str = Field(description="The answer to the question, in a paragraph.")
    findings: list[Finding] = Field(min_length=1, max_length=12, description="Key findings with evidence strength.")
    conflicts: list[str] = Field(max_length=8, description="Where sources disagree and why they might.")
    gaps: list[str] = Field(max_length=8, description="What the literature does not yet answer.")


class StudyDesignInput(BaseModel):
    """A research question to design a study for."""

    research_question: str = Field(min_length=1, max_length=2_000, description="The question the study must answer.")
    constraints: list[str] = Field(
        default_factory=list, max_length=10, description="Optional constraints: budget, time, access to participants."
    )
    expected_effect_size: float | None = Field(
        default=None, gt=0, le=10, description="Optional expected effect size (Cohen's d) for sample-size estimates."
    )


class StudyDesign(BaseModel):
    """A proposed study design."""

    hypotheses: list[str] = Field(min_length=1, max_length=5, description="Testable hypotheses.")
    design: str = Field(description="The study design and why it fits (e.g. RCT, cohort, A/B test, survey).")
    sample_size: int = Field(ge=1, description="Proposed sample size, with the power calculation in the analysis plan.")
    variables: list[str] = Field(
        min_length=1, max_length=12, description="Independent, dependent and control variables."
    )
    analysis_plan: str = Field(description="How the data will be analysed, including the power calculation.")
    threats_to_validity: list[str] = Field(max_length=8, description="Biases and confounders and how to address them.")


class ClaimInput(BaseModel):
    """A claim to appraise."""

    claim: str = Field(min_length=1, max_length=5_000, description="The claim, as stated.")
    context: str | None = Field(
        default=None, max_length=20_000, description="Optional source text or evidence offered for the claim."
    )


class ClaimAssessment(BaseModel):
    """A critical appraisal of a claim."""

    verdict: Literal["supported", "partly_supported", "unsupported", "contradicted", "insufficient_evidence"] = Field(
        description="How well the evidence supports the claim."
    )
    reasoning: str = Field(description="Why, with reference to the evidence and its quality.")
    caveats: list[str] = Field(max_length=8, description="Limits of the evidence and of this assessment.")
    what_would_change_it: list[str] = Field(max_length=6, description="Evidence that would change the verdict.")


TEAM = Team(
    name="research",
    description="Literature synthesis, study design and critical appraisal of claims.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="summarize_literature",
            description="Synthesise sources into findings graded by evidence strength.",
            input=LiteratureInput,
            output=LiteratureSummary,
            instructions=(
                "Answer the question from the sources, citing them by label. Grade each finding's evidence strength, "
                "note where sources conflict and what remains unanswered. If no sources are given, rely on general "
                "knowledge, cite nothing specific and say so in the summary. Never invent citations."
            ),
            max_tokens=4096,
        ),
        Operation(
            name="design_study",
            description="Design a study to answer a research question, with hypotheses and a power estimate.",
            input=StudyDesignInput,
            output=StudyDesign,
            instructions=(
                "Propose hypotheses, a fitting design, variables and an analysis plan. Estimate the sample size with "
                "a power calculation (alpha 0.05, power 0.8 unless stated; use the expected effect size if given) and "
                "show it. List threats to validity and ethical considerations within the constraints."
            ),
        ),
        Operation(
            name="evaluate_claim",
            description="Critically appraise a claim against the evidence offered for it.",
            input=ClaimInput,
            output=ClaimAssessment,
            instructions=(
                "Judge how well the evidence supports the claim, considering study design, sample, confounders and "
                "whether the conclusion follows. Give a verdict, the reasoning, caveats and what would change it."
            ),
        ),
    ),
)
