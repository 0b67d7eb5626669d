"""Security team: threat assessment, configuration review and incident response."""

from typing import Literal

from pydantic import BaseModel, Field

from shared.catalog import Operation, Team

ROLE = """You are the security team: defensive security engineers and incident responders experienced in threat
modelling (STRIDE, attack trees, MITRE ATT&CK), application and cloud security, identity, detection engineering,
incident response and frameworks such as OWASP ASVS, CIS Benchmarks, ISO 27001, SOC 2 and NIST CSF.
You work for defenders: your goal is to reduce real risk with proportionate, prioritised controls.
When you answer:
- Lead with the highest-risk findings and what to do about them first.
- Rate likelihood and impact explicitly and explain the rating; state what you assumed about the system.
- Make every recommendation concrete (setting, control, owner) and note its cost or friction.
- Distinguish confirmed issues from hypotheses that need verification.
You refuse to write working exploits, malware, ransomware, phishing kits, credential stealers or evasion
techniques for use against third parties, or to help access systems without authorisation. You may explain
vulnerability classes and attacker techniques conceptually for defence, and support authorised testing.
You never ask for or repeat secrets; tell users to rotate any credential they have exposed.
In incidents, prioritise containment and evidence preservation, and advise on legal and notification duties."""

Level = Literal["low", "medium", "high", "critical"]


class ThreatInput(BaseModel):
    """A system to threat-model."""

    system_description: str = Field(
        min_length=1, max_length=20_000, description="The system: components, data flows, users, trust boundaries."
    )
    assets: list[str] = Field(
        default_factory=list, max_length=20, description="Optional assets to protect, e.g. 'customer PII', 'API keys'."
    )
    exposure: Literal["internal", "internet_facing", "mixed"] = Field(
        default="internet_facing", description="How exposed the system is."
    )
    compliance: list[str] = Field(
        default_factory=list, max_length=10, description="Optional frameworks in scope, e.g. 'SOC 2', 'PCI DSS'."
    )


class Threat(BaseModel):
    """One threat in the model."""

    title: str = Field(description="Short description of the threat.")
    stride: Literal[
        "spoofing", "tampering", "repudiation", "information_disclosure", "denial_of_service", "elevation_of_privilege"
    ] = Field(description="STRIDE category.")
    affected_component: str = Field(description="The component or data flow affected.")
    likelihood: Level = Field(description="Likelihood given the exposure and existing controls.")
    impact: Level = Field(description="Impact if the threat is realised.")
    mitigation: str = Field(description="Recommended control, concretely.")


class ThreatAssessment(BaseModel):
    """A STRIDE threat assessment."""

    summary: str = Field(description="The overall security posture and the most important risks.")
    overall_risk: Level = Field(description="Overall risk rating.")
    threats: list[Threat] = Field(min_length=1, max_length=30, description="Threats, highest risk first.")
    top_priorities: list[str] = Field(min_length=1, max_length=5, description="The first actions to take.")
    assumptions: list[str] = Field(max_length=10, description="What was assumed about the system.")


class ConfigReviewInput(BaseModel):
    """A configuration to review for security issues."""

    config_text: str = Field(
        min_length=1, max_length=50_000, description="The configuration (redact secrets before sending)."
    )
    kind: Literal[
        "iam_policy", "terraform", "kubernetes", "dockerfile", "nginx", "ssh", "firewall", "ci_pipeline", "other"
    ] = Field(description="What kind of configuration it is.")


class SecurityFinding(BaseModel):
    """One configuration finding."""

    title: str = Field(description="Short title of the finding.")
    severity: Level = Field(description="Severity of the finding.")
    evidence: str = Field(description="The offending setting or line.")
    remediation: str = Field(description="The corrected setting or change to make.")


class ConfigReview(BaseModel):
    """A security review of a configuration."""

    summary: str = Field(description="Overall assessment.")
    findings: list[SecurityFinding] = Field(max_length=40, description="Findings, most severe first.")
    secrets_exposed: bool = Field(description="Whether the text appears to contain secrets that must be rotated.")


class IncidentInput(BaseModel):
    """A suspected security incident."""

    description: str = Field(min_length=1, max_length=20_000, description="What was observed, when and where.")
    affected_systems: list[str] = Field(
        default_factory=list, max_length=20, description="Optional systems believed to be affected."
    )
    personal_data_involved: bool | None = Field(
        default=None, description="Optional: whether personal data may be affected (notification duties)."
    )


class IncidentResponsePlan(BaseModel):
    """A prioritised incident response plan."""

    severity: Level = Field(description="Initial incident severity.")
    immediate_actions: list[str] = Field(
        min_length=1, max_length=10, description="Containment steps for the first hour."
    )
    evidence_to_preserve: list[str] = Field(min_length=1, max_length=10, description="Logs and artefacts to preserve.")
    eradication_and_recovery: list[str] = Field(min_length=1, max_length=10, description="Steps after containment.")
    notifications: list[str] = Field(max_length=8, description="Who may need to be notified and by when.")


TEAM = Team(
    name="security",
    description="Defensive security: threat modelling, configuration review and incident response planning.",
    role=ROLE,
    model="claude-opus-4-5",
    on_low_budget_model="claude-haiku-4-5",
    tools=("current_time", "notes", "consult_team"),
    operations=(
        Operation(
            name="assess_threats",
            description="Threat-model a system with STRIDE and prioritise mitigations.",
            input=ThreatInput,
            output=ThreatAssessment,
            instructions=(
                "Threat-model the system with STRIDE across its components, data flows and trust boundaries, "
                "considering its exposure and the assets. Rate likelihood and impact for each threat, give a "
                "concrete mitigation, rank by risk, and list the top priorities and your assumptions. Describe "
                "attacks conceptually; do not provide exploit code."
            ),
            max_tokens=4096,
        ),
        Operation(
            name="review_config",
            description="Review a configuration file for security misconfigurations.",
            input=ConfigReviewInput,
            output=ConfigReview,
            instructions=(
                "Check the configuration against least privilege, secure defaults and the relevant benchmark "
                "(e.g. CIS). For each finding quote the setting, rate severity and give the corrected setting. "
                "Set secrets_exposed if the text contains credentials, and never repeat them."
            ),
        ),
        Operation(
            name="plan_incident_response",
            description="Plan the response to a suspected security incident.",
            input=IncidentInput,
            output=IncidentResponsePlan,
            instructions=(
                "Rate initial severity, then give first-hour containment actions, evidence to preserve before "
                "changing systems, eradication and recovery steps, and possible notification duties (e.g. GDPR "
                "72 hours) if personal data may be involved. Recommend involving legal counsel where relevant."
            ),
        ),
    ),
)
