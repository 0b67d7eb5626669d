"""Machine-learning and AI team: model selection, evaluation design and training diagnosis."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the machine-learning and AI team: ML engineers and applied scientists experienced in classical ML,
deep learning, NLP, computer vision, recommender systems, LLM applications (RAG, fine-tuning, evaluation) and MLOps.
You start from the problem and the data, establish a simple baseline, and only then add complexity.
When you answer:
- Lead with the recommendation, then the reasoning, alternatives and trade-offs (accuracy, cost, latency, data).
- State assumptions about data size, label quality, distribution shift and compute budget.
- Show any calculation (metrics, sample sizes, compute or cost estimates) with its inputs.
- Define how success is measured offline and online, and what would make you change course.
You care about responsible AI: you check for data leakage, bias across groups, privacy of training data,
and misuse; you recommend documentation (model cards) and human oversight for high-stakes decisions.
You refuse to help build systems for unlawful surveillance, discriminatory decisions on protected characteristics,
non-consensual deepfakes, or training on data the user has no right to use.
Be precise and pragmatic; avoid hype."""

TaskType = Literal[
    "classification", "regression", "ranking", "clustering", "forecasting", "generation", "detection", "other"
]


class ModelSelectionInput(BaseModel):
    """A problem to choose a modelling approach for."""

    problem: str = Field(
        min_length=1, max_length=10_000, description="The business problem and the decision it informs."
    )
    data_description: str = Field(
        min_length=1, max_length=10_000, description="The available data: features, labels, format, quality."
    )
    n_samples: int | None = Field(default=None, ge=1, le=10_000_000_000, description="Optional number of examples.")
    constraints: list[str] = Field(
        default_factory=list, max_length=10, description="Optional constraints: latency, interpretability, budget."
    )


class ModelCandidate(BaseModel):
    """One candidate approach."""

    approach: str = Field(description="The model or approach, e.g. 'gradient-boosted trees (LightGBM)'.")
    why: str = Field(description="Why it fits the problem and data.")
    tradeoffs: str = Field(description="Costs and risks: data needs, latency, interpretability.")


class ModelRecommendation(BaseModel):
    """A recommended modelling approach."""

    task_type: TaskType = Field(description="The ML task type.")
    baseline: str = Field(description="A simple baseline to beat first.")
    candidates: list[ModelCandidate] = Field(min_length=1, max_length=5, description="Candidates, recommended first.")
    metrics: list[str] = Field(min_length=1, max_length=6, description="Metrics to optimise and report.")
    data_risks: list[str] = Field(max_length=8, description="Leakage, imbalance, bias or drift risks to check.")


class EvaluationInput(BaseModel):
    """A model whose evaluation should be designed."""

    model_purpose: str = Field(min_length=1, max_length=5_000, description="What the model does and who it affects.")
    task_type: TaskType = Field(description="The ML task type.")
    high_stakes: bool = Field(
        default=False, description="Whether the model affects people's access to jobs, credit, health, etc."
    )


class MetricSpec(BaseModel):
    """One evaluation metric."""

    name: str = Field(description="Metric name, e.g. 'recall at 1% FPR'.")
    why: str = Field(description="Why it matters for this use case.")
    target: str = Field(description="The target or acceptance threshold.")


class EvaluationPlan(BaseModel):
    """An evaluation plan for a model."""

    metrics: list[MetricSpec] = Field(min_length=1, max_length=8, description="Offline metrics with targets.")
    validation_strategy: str = Field(description="How data is split (time-based, grouped, stratified) and why.")
    fairness_checks: list[str] = Field(max_length=8, description="Subgroup and bias checks.")
    online_evaluation: str = Field(description="How the model is tested in production (A/B, shadow, canary).")
    monitoring: list[str] = Field(min_length=1, max_length=8, description="What to monitor after launch.")


class TrainingDiagnosisInput(BaseModel):
    """Training symptoms to diagnose."""

    symptoms: str = Field(min_length=1, max_length=10_000, description="What is going wrong in training or evaluation.")
    model: str = Field(min_length=1, max_length=500, description="Model architecture and key hyperparameters.")
    train_metric: float | None = Field(default=None, description="Optional training metric value.")
    validation_metric: float | None = Field(default=None, description="Optional validation metric value.")


class Diagnosis(BaseModel):
    """A diagnosis of a training problem."""

    likely_issue: Literal[
        "overfitting",
        "underfitting",
        "data_leakage",
        "label_noise",
        "distribution_shift",
        "optimization",
        "bug",
        "other",
    ] = Field(description="The most likely underlying issue.")
    explanation: str = Field(description="Why the symptoms point to it.")
    experiments: list[str] = Field(min_length=1, max_length=8, description="Experiments to confirm, cheapest first.")
    fixes: list[str] = Field(min_length=1, max_length=8, description="Likely fixes, most promising first.")


TEAM = Team(
    name="machine-learning-ai",
    description="Model selection, evaluation design and training diagnosis for ML and AI systems.",
    role=ROLE,
    model="claude-sonnet-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("calculator", "current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="recommend_model",
            description="Recommend a modelling approach, baseline and metrics for a problem and dataset.",
            input=ModelSelectionInput,
            output=ModelRecommendation,
            instructions=(
                "Frame the problem as an ML task, propose a simple baseline, then up to five candidate approaches "
                "suited to the data size and constraints with trade-offs. Choose metrics that reflect the business "
                "cost of errors and list data risks such as leakage, imbalance and bias."
            ),
        ),
        Operation(
            name="design_evaluation",
            description="Design an offline and online evaluation plan, with fairness checks and monitoring.",
            input=EvaluationInput,
            output=EvaluationPlan,
            instructions=(
                "Choose metrics with acceptance targets, a validation split that avoids leakage, subgroup fairness "
                "checks (mandatory when high_stakes), an online evaluation approach and post-launch monitoring."
            ),
        ),
        Operation(
            name="diagnose_training",
            description="Diagnose a model-training problem from its symptoms and metrics.",
            input=TrainingDiagnosisInput,
            output=Diagnosis,
            instructions=(
                "Identify the most likely issue from the symptoms and the train/validation gap, explain the "
                "reasoning, list cheap experiments to confirm it and fixes to try."
            ),
        ),
    ),
)
