"""The modelreg API: Pydantic models of the three kinds (docs/{registeredmodel,evaluation,incidents}.md).

These models are the single source of truth for the API. The CRD schemas in
``crds/`` are generated from them by :mod:`modelreg.api.crdgen` (``make crds``),
and a test proves the committed files equal the generated ones.

Kubernetes-specific schema facts (CEL rules, list types, printer columns) are
attached to fields with ``json_schema_extra`` so that they live next to the
field they constrain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

# --------------------------------------------------------------------------- enums

Stage = Literal["Development", "Sandbox", "Production", "RolledBack", "Archived"]
TargetStage = Literal["Development", "Sandbox", "Production"]
Health = Literal["Unknown", "Healthy", "Degraded", "Critical"]
Verdict = Literal["Healthy", "Degraded", "Critical", "Inconclusive", "Orphaned"]
RollbackMode = Literal["Automatic", "IncidentOnly", "Disabled"]
DriftMetric = Literal["klDivergence", "psi", "jsDivergence"]
Severity = Literal["low", "medium", "high"]
IncidentPhase = Literal["Open", "Remediating", "Remediated", "Failed", "Resolved"]
ConditionStatus = Literal["True", "False", "Unknown"]
ServingKind = Literal["Deployment", "StatefulSet", "Rollout", "Service", "InferenceService", "Model"]
ServingApiVersion = Literal[
    "apps/v1", "argoproj.io/v1alpha1", "serving.knative.dev/v1", "serving.kserve.io/v1beta1", "mlops.seldon.io/v1alpha1"
]

# --------------------------------------------------------------------------- patterns and bounds

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
VERSION_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"
#: Go duration syntax (time.ParseDuration), non-negative.
DURATION_PATTERN = r"^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"
DIGEST_PATTERN = r"^sha256:[a-f0-9]{64}$"
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
METRIC_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$"

MAX_NAME = 253
MAX_SHORT = 256
MAX_URI = 2048
MAX_TEXT = 16384
MAX_LIST = 64
MAX_FEATURES = 50
MAX_BINS = 500
MAX_STAGE_HISTORY = 50
MAX_INCIDENT_SNAPSHOTS = 20
#: "<name>-model-card" must fit a ConfigMap name (253).
MAX_MODEL_NAME_LENGTH = 242


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> JsonDict:
    """One ``x-kubernetes-validations`` entry."""
    out: JsonDict = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def k8s(**extra: Any) -> dict[str, Any]:
    """Schema extras passed through to the CRD (keys written as in the CRD)."""
    return extra


class Model(BaseModel):
    """Base: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=False)

    def wire(self) -> dict[str, Any]:
        """The object as it is written to the API (camelCase, no unset fields)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OpenModel(Model):
    """A model that keeps free-form keys beyond the declared ones."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


ShortStr = Annotated[str, Field(max_length=MAX_SHORT)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Uri = Annotated[str, Field(min_length=1, max_length=MAX_URI)]
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=64)]
Rate = Annotated[float, Field(ge=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]
MetricName = Annotated[str, Field(pattern=METRIC_NAME_PATTERN, max_length=63)]

# --------------------------------------------------------------------------- RegisteredModel spec


class Owner(Model):
    team: ShortStr | None = None
    contact: ShortStr | None = None


class Framework(Model):
    name: ShortStr
    version: ShortStr | None = None


class Artifact(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(oldSelf.digest) || (has(self.digest) && self.digest == oldSelf.digest)",
                    "artifact.digest may be added once, then it is immutable",
                    ".digest",
                )
            ]
        }
    )
    uri: Uri = Field(
        description="Where the model artifact lives. Immutable.",
        json_schema_extra=k8s(**{"x-kubernetes-validations": [cel("self == oldSelf", "artifact.uri is immutable")]}),
    )
    digest: str | None = Field(
        default=None,
        pattern=DIGEST_PATTERN,
        max_length=71,
        description="sha256:<64 hex>. Required to leave Development; may be added once, then immutable.",
    )


class Dataset(Model):
    name: ShortStr
    uri: Annotated[str, Field(max_length=MAX_URI)] | None = None
    digest: ShortStr | None = None


class Provenance(OpenModel):
    git_commit: ShortStr | None = None
    repository: Annotated[str, Field(max_length=MAX_URI)] | None = None
    pipeline_run: ShortStr | None = None
    parent_version: ShortStr | None = None
    training_data: list[Dataset] | None = Field(default=None, max_length=MAX_LIST)


class EthicalConsideration(Model):
    name: ShortStr
    mitigation: Text | None = None


class EvaluationResult(Model):
    metric: MetricName
    value: float
    dataset: ShortStr | None = None


class EvaluationRequirement(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.min) || has(self.max)", "a required evaluation needs min or max")
            ]
        }
    )
    metric: MetricName
    min: float | None = None
    max: float | None = None


class Approval(Model):
    by: Annotated[str, Field(min_length=1, max_length=MAX_SHORT)]
    at: datetime | None = None
    comment: Text | None = None


class PromotionPolicy(Model):
    min_sandbox_duration: Duration | None = None
    min_healthy_snapshots: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    require_approval: bool | None = None
    required_evaluation: list[EvaluationRequirement] | None = Field(default=None, max_length=MAX_LIST)


class MaxCriterion(Model):
    max: NonNegative
    warn: float | None = Field(default=None, description="Explicit warning level (value ≥ warn warns).")


class RateCriterion(Model):
    max: Rate
    warn: Rate | None = Field(default=None, description="Explicit warning level (value ≥ warn warns).")


class DriftCriterion(Model):
    metric: DriftMetric | None = None
    max: NonNegative | None = None
    warn: NonNegative | None = None


class CustomCriterion(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [cel("has(self.min) != has(self.max)", "exactly one of min or max must be set")]
        }
    )
    metric: MetricName
    min: float | None = None
    max: float | None = None
    warn: float | None = None


class Criteria(Model):
    error_rate: RateCriterion | None = None
    ood_rate: RateCriterion | None = None
    drift: DriftCriterion | None = None
    latency_p99_ms: MaxCriterion | None = Field(default=None, alias="latencyP99Ms")
    custom: list[CustomCriterion] | None = Field(default=None, max_length=MAX_LIST)


class RollbackPolicy(Model):
    mode: RollbackMode | None = None
    playbook: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9_.-]*[a-z0-9])?$", max_length=63)] | None = None
    criteria: Criteria | None = None
    min_samples: Annotated[int, Field(ge=0)] | None = None
    consecutive_breaches: Annotated[int, Field(ge=1, le=1000)] | None = None
    warn_ratio: Annotated[float, Field(gt=0, le=1)] | None = None
    stale_after: Duration | None = None
    incident_on_warning: bool | None = None


#: The serving kinds (docs/serving.md) and the apiVersion each one is served at.
SERVING_API_VERSIONS: dict[str, str] = {
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "Rollout": "argoproj.io/v1alpha1",
    "Service": "serving.knative.dev/v1",
    "InferenceService": "serving.kserve.io/v1beta1",
    "Model": "mlops.seldon.io/v1alpha1",
}
#: Kinds whose served field is an env entry of a container (they need ``container`` and ``env``).
ENV_KINDS = ("Deployment", "StatefulSet", "Rollout", "Service")


def _kind_matches_api_version() -> str:
    apps = [k for k, v in SERVING_API_VERSIONS.items() if v == "apps/v1"]
    others = " || ".join(
        f"(self.kind == '{k}' && self.apiVersion == '{v}')" for k, v in SERVING_API_VERSIONS.items() if v != "apps/v1"
    )
    return (
        f"has(self.apiVersion) ? ((self.kind in {apps} && self.apiVersion == 'apps/v1') || {others})"
        f" : self.kind in {apps}"
    ).replace('"', "'")


class TargetRef(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    _kind_matches_api_version(),
                    "apiVersion must match kind: apps/v1 (may be omitted) for Deployment and StatefulSet, "
                    "argoproj.io/v1alpha1 for Rollout, serving.knative.dev/v1 for Service, "
                    "serving.kserve.io/v1beta1 for InferenceService, mlops.seldon.io/v1alpha1 for Model",
                    ".apiVersion",
                )
            ]
        }
    )
    api_version: ServingApiVersion | None = Field(
        default=None, description="Required except for apps/v1 kinds (Deployment, StatefulSet)."
    )
    kind: ServingKind
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=MAX_NAME)]

    @model_validator(mode="after")
    def _api_version_matches(self) -> TargetRef:  # the CEL rule above, for objects read without the CRD
        wanted = SERVING_API_VERSIONS[self.kind]
        if (self.api_version or "apps/v1") != wanted:
            raise ValueError(f"targetRef.apiVersion must be {wanted} for kind {self.kind}")
        return self

    @property
    def effective_api_version(self) -> str:
        return self.api_version or SERVING_API_VERSIONS[self.kind]


class Canary(Model):
    traffic_percent: Annotated[int, Field(ge=1, le=99)] = Field(
        description="Share of the InferenceService's traffic the Sandbox version gets while it is the canary."
    )


class Serving(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.targetRef.kind in ['InferenceService', 'Model'] || (has(self.container) && has(self.env))",
                    "container and env are required for Deployment, StatefulSet, Rollout and Service",
                    ".container",
                ),
                cel(
                    "self.targetRef.kind in ['Deployment', 'StatefulSet', 'Rollout', 'Service']"
                    " || (!has(self.container) && !has(self.env))",
                    "container and env apply only to Deployment, StatefulSet, Rollout and Service "
                    "(an InferenceService or Model gets its storageUri)",
                    ".env",
                ),
                cel(
                    "!has(self.canary) || self.targetRef.kind == 'InferenceService'",
                    "canary is supported only on an InferenceService",
                    ".canary",
                ),
            ]
        }
    )
    target_ref: TargetRef
    container: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] | None = None
    env: Annotated[str, Field(pattern=ENV_NAME_PATTERN, max_length=MAX_SHORT)] | None = None
    canary: Canary | None = Field(default=None, description="KServe canary while this version is in Sandbox.")

    @model_validator(mode="after")
    def _shape_matches_kind(self) -> Serving:  # the CEL rules above
        env_kind = self.target_ref.kind in ENV_KINDS
        if env_kind and (self.container is None or self.env is None):
            raise ValueError(f"serving.container and serving.env are required for {self.target_ref.kind}")
        if not env_kind and (self.container is not None or self.env is not None):
            raise ValueError(f"serving.container and serving.env do not apply to {self.target_ref.kind}")
        if self.canary is not None and self.target_ref.kind != "InferenceService":
            raise ValueError("serving.canary is supported only on an InferenceService")
        return self


class RegisteredModelSpec(Model):
    model_name: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = Field(
        description="Versions of one model share it (a DNS label)."
    )
    version: Annotated[str, Field(pattern=VERSION_PATTERN, max_length=63)] = Field(
        description="Immutable.",
        json_schema_extra=k8s(**{"x-kubernetes-validations": [cel("self == oldSelf", "version is immutable")]}),
    )
    description: Text | None = None
    owner: Owner | None = None
    license: ShortStr | None = None
    framework: Framework | None = None
    artifact: Artifact
    provenance: Provenance | None = None
    intended_use: Text | None = None
    limitations: list[Text] | None = Field(default=None, max_length=MAX_LIST)
    ethical_considerations: list[EthicalConsideration] | None = Field(default=None, max_length=MAX_LIST)
    evaluation: list[EvaluationResult] | None = Field(default=None, max_length=MAX_LIST)
    tags: dict[str, ShortStr] | None = Field(default=None, max_length=MAX_LIST)
    target_stage: TargetStage | None = Field(default=None, description="Defaults to Development (operator-wide).")
    approvals: list[Approval] | None = Field(default=None, max_length=MAX_LIST)
    promotion_policy: PromotionPolicy | None = None
    rollback_policy: RollbackPolicy | None = None
    serving: Serving | None = None
    snapshot_history_limit: Annotated[int, Field(ge=1, le=10_000)] | None = None
    monitoring: Monitoring | None = Field(
        default=None, description="Pull this version's snapshots from a MetricSource (docs/metricsource.md)."
    )


# --------------------------------------------------------------------------- shared status pieces


class Condition(Model):
    type: Annotated[str, Field(max_length=316)]
    status: ConditionStatus
    reason: Annotated[str, Field(max_length=1024)] = ""
    message: Annotated[str, Field(max_length=32768)] = ""
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


CONDITIONS_EXTRA = k8s(**{"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})


class Breach(Model):
    criterion: ShortStr
    value: float
    threshold: float


class DriftFeatureResult(Model):
    name: ShortStr
    kl_divergence: float | None = None
    psi: float | None = None
    js_divergence: float | None = None


class DriftResult(Model):
    metric: DriftMetric | None = None
    value: float | None = None
    kl_divergence: float | None = None
    psi: float | None = None
    js_divergence: float | None = None
    features: list[DriftFeatureResult] | None = Field(default=None, max_length=MAX_FEATURES)
    method: Text | None = None


Metrics = dict[str, float]

# --------------------------------------------------------------------------- RegisteredModel status


class StageHistoryEntry(Model):
    stage: Stage
    at: datetime
    reason: ShortStr
    message: Text = ""


class Gates(Model):
    sandbox_since: datetime | None = None
    healthy_snapshots: int = 0
    pending: list[ShortStr] = Field(default_factory=list, max_length=MAX_LIST)


class LastSnapshot(Model):
    name: Annotated[str, Field(max_length=MAX_NAME)]
    at: datetime | None = None
    verdict: Verdict
    metrics: Metrics = Field(default_factory=dict)
    breaches: list[Breach] = Field(default_factory=list, max_length=MAX_LIST)
    drift: float | None = None


class ConclusiveSnapshot(Model):
    name: Annotated[str, Field(max_length=MAX_NAME)]
    at: datetime | None = None
    verdict: Verdict
    metrics: Metrics = Field(
        default_factory=dict, description="Its metrics (fleet view and per-version gauges show these)."
    )
    drift: float | None = None


class IncidentRef(Model):
    name: Annotated[str, Field(max_length=MAX_NAME)]
    severity: Severity


class RetryRecord(Model):
    observed_value: ShortStr
    at: datetime
    approvals_before: list[Approval] = Field(default_factory=list, max_length=MAX_LIST)


class RollbackRecord(Model):
    observed_value: ShortStr
    at: datetime


class ModelCardRef(Model):
    config_map: Annotated[str, Field(max_length=MAX_NAME)]
    sha256: ShortStr = Field(description="Hash of the card's inputs; the card is re-rendered when it changes.")
    stage: Stage | None = None
    health: Health | None = None
    metrics: Metrics = Field(default_factory=dict, description="Metrics shown: as of the last stage or health change.")
    metrics_at: datetime | None = None
    verdict: Verdict | None = None


class CanaryStatus(Model):
    target: Annotated[str, Field(max_length=MAX_NAME + 64)] = Field(description="<kind>/<name> of the workload.")
    traffic_percent: int
    started_at: datetime | None = None
    active: bool = Field(default=False, description="The workload carries this version as its canary now.")
    failed: bool = Field(default=False, description="Withdrawn after breaching snapshots (Stalled: CanaryFailed).")
    consecutive_breaches: int = 0
    message: Text = ""


class EffectivePromotionPolicy(Model):
    min_sandbox_duration: Duration
    min_healthy_snapshots: int
    require_approval: bool
    required_evaluation: list[EvaluationRequirement] = Field(default_factory=list, max_length=MAX_LIST)


class EffectiveCriteria(Model):
    error_rate: RateCriterion | None = None
    ood_rate: RateCriterion | None = None
    drift: DriftCriterion | None = None
    latency_p99_ms: MaxCriterion | None = Field(default=None, alias="latencyP99Ms")
    custom: list[CustomCriterion] = Field(default_factory=list, max_length=MAX_LIST)


class EffectiveRollbackPolicy(Model):
    mode: RollbackMode
    playbook: ShortStr
    criteria: EffectiveCriteria
    min_samples: int
    consecutive_breaches: int
    warn_ratio: float
    stale_after: Duration
    incident_on_warning: bool


class EffectivePolicy(Model):
    target_stage: TargetStage
    promotion_policy: EffectivePromotionPolicy
    rollback_policy: EffectiveRollbackPolicy
    snapshot_history_limit: int
    monitoring: EffectiveMonitoring | None = None


class RegisteredModelStatus(Model):
    observed_generation: int | None = None
    stage: Stage | None = None
    health: Health | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16, json_schema_extra=CONDITIONS_EXTRA)
    effective_policy: EffectivePolicy | None = None
    stage_history: list[StageHistoryEntry] = Field(default_factory=list, max_length=MAX_STAGE_HISTORY)
    production_since: datetime | None = None
    archived_at: datetime | None = Field(default=None, description="When it was last archived.")
    gates: Gates | None = None
    last_snapshot: LastSnapshot | None = None
    last_conclusive: ConclusiveSnapshot | None = Field(
        default=None, description="The latest conclusive snapshot (health is derived from it)."
    )
    consecutive_breaches: int = 0
    counted_snapshots: list[Annotated[str, Field(max_length=MAX_NAME)]] = Field(
        default_factory=list,
        max_length=MAX_INCIDENT_SNAPSHOTS,
        description="Newest snapshots folded into this status, so a redelivered one is never counted twice.",
    )
    incident: IncidentRef | None = None
    rolled_back_to: ShortStr | None = None
    retry: RetryRecord | None = None
    rollback: RollbackRecord | None = Field(default=None, description="Last manual rollback request handled.")
    model_card: ModelCardRef | None = None
    canary: CanaryStatus | None = Field(
        default=None, description="This version's KServe canary, if any (docs/serving.md)."
    )


# --------------------------------------------------------------------------- PerformanceSnapshot


class ModelRef(Model):
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=MAX_NAME)]


class Window(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.start) || !has(self.end) || timestamp(self.start) <= timestamp(self.end)",
                    "window.start must not be after window.end",
                )
            ]
        }
    )
    start: datetime | None = None
    end: datetime | None = None


class SnapshotMetrics(Model):
    error_rate: Rate | None = None
    ood_rate: Rate | None = None
    latency_p99_ms: NonNegative | None = Field(default=None, alias="latencyP99Ms")
    custom: dict[MetricName, float] | None = Field(default=None, max_length=MAX_LIST)


Count = Annotated[float, Field(ge=0)]


class FeatureHistogram(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "size(self.reference) == size(self.current)",
                    "reference and current must have the same number of bins",
                )
            ]
        }
    )
    name: Annotated[str, Field(min_length=1, max_length=MAX_SHORT)]
    reference: list[Count] = Field(min_length=1, max_length=MAX_BINS)
    current: list[Count] = Field(min_length=1, max_length=MAX_BINS)


class SnapshotDrift(Model):
    kl_divergence: NonNegative | None = Field(default=None, description="Precomputed; used only without features.")
    psi: NonNegative | None = None
    js_divergence: NonNegative | None = None
    features: list[FeatureHistogram] | None = Field(default=None, max_length=MAX_FEATURES)


class PerformanceSnapshotSpec(Model):
    model_config = ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [cel("self == oldSelf", "spec is immutable")]}
    )
    model_ref: ModelRef
    window: Window | None = None
    sample_count: Annotated[int, Field(ge=0)]
    metrics: SnapshotMetrics | None = None
    drift: SnapshotDrift | None = None
    source: SnapshotSource | None = Field(default=None, description="Set on snapshots the operator pulled.")


class PerformanceSnapshotStatus(Model):
    verdict: Verdict | None = None
    reason: Text = ""
    breaches: list[Breach] = Field(default_factory=list, max_length=MAX_LIST)
    warnings: list[Breach] = Field(default_factory=list, max_length=MAX_LIST)
    missing: list[ShortStr] = Field(default_factory=list, max_length=MAX_LIST)
    drift: DriftResult | None = None
    stage: Stage | None = Field(default=None, description="The version's stage when it was evaluated.")
    evaluated_at: datetime | None = None
    orphaned_at: datetime | None = None


# --------------------------------------------------------------------------- Incident


class IncidentModelRef(Model):
    name: Annotated[str, Field(max_length=MAX_NAME)]
    model_name: Annotated[str, Field(max_length=63)]
    version: Annotated[str, Field(max_length=63)]


class Trigger(Model):
    snapshot: Annotated[str, Field(max_length=MAX_NAME)]
    breaches: list[Breach] = Field(default_factory=list, max_length=MAX_LIST)
    warnings: list[Breach] = Field(default_factory=list, max_length=MAX_LIST)
    metrics: Metrics = Field(default_factory=dict)


class IncidentSpec(Model):
    type: Annotated[str, Field(max_length=63)] = "ModelPerformanceDegradation"
    severity: Severity
    summary: Text
    model_ref: IncidentModelRef
    stage: Stage
    trigger: Trigger
    playbook: ShortStr
    restore_version: ShortStr | None = None
    dedup_key: Annotated[str, Field(max_length=512)]


class IncidentAction(Model):
    playbook: ShortStr
    action: ShortStr
    at: datetime
    result: Literal["Succeeded", "Failed", "Skipped"]
    message: Text = ""


class IncidentStatus(Model):
    phase: IncidentPhase | None = None
    reason: ShortStr | None = None
    occurrences: int = 0
    snapshots: list[Annotated[str, Field(max_length=MAX_NAME)]] = Field(
        default_factory=list, max_length=MAX_INCIDENT_SNAPSHOTS
    )
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    claimed_by: ShortStr | None = None
    claim_expires_at: datetime | None = None
    actions: list[IncidentAction] = Field(default_factory=list, max_length=MAX_LIST)
    closed_at: datetime | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16, json_schema_extra=CONDITIONS_EXTRA)


# --------------------------------------------------------------------------- kinds


class ObjectMeta(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    namespace: str | None = None


class RegisteredModel(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: str = "modelreg.io/v1alpha1"
    kind: str = "RegisteredModel"
    metadata: ObjectMeta
    spec: RegisteredModelSpec
    status: RegisteredModelStatus | None = None


class PerformanceSnapshot(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: str = "modelreg.io/v1alpha1"
    kind: str = "PerformanceSnapshot"
    metadata: ObjectMeta
    spec: PerformanceSnapshotSpec
    status: PerformanceSnapshotStatus | None = None


class Incident(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: str = "modelreg.io/v1alpha1"
    kind: str = "Incident"
    metadata: ObjectMeta
    spec: IncidentSpec
    status: IncidentStatus | None = None


# --------------------------------------------------------------------------- IncidentNotifier (docs/healing.md)

NotifyResult = Literal["Succeeded", "Failed"]
#: A Secret key (as in a Secret's data).
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
LABEL_KEY_MAX = 317  # an optional DNS-subdomain prefix (253) + "/" + a name (63)
MAX_DELIVERIES = 50
MAX_DELIVERED = 500


class SecretKeyRef(Model):
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=MAX_NAME)]
    key: Annotated[str, Field(pattern=SECRET_KEY_PATTERN, max_length=MAX_NAME)]


class LabelSelectorRequirement(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "(self.operator in ['In', 'NotIn']) == (has(self.values) && size(self.values) > 0)",
                    "values must be non-empty for In and NotIn, and absent for Exists and DoesNotExist",
                )
            ]
        }
    )
    key: Annotated[str, Field(min_length=1, max_length=LABEL_KEY_MAX)]
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[Annotated[str, Field(max_length=63)]] | None = Field(default=None, max_length=MAX_LIST)


class LabelSelector(Model):
    match_labels: dict[str, Annotated[str, Field(max_length=63)]] | None = Field(default=None, max_length=MAX_LIST)
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=MAX_LIST)


class Webhook(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.url) != has(self.urlSecretRef)", "exactly one of url or urlSecretRef must be set")
            ]
        }
    )
    url: Annotated[str, Field(pattern=r"^https?://[^\s]+$", max_length=MAX_URI)] | None = Field(
        default=None, description="http:// or https:// URL of the receiver (no secret in it: see urlSecretRef)."
    )
    url_secret_ref: SecretKeyRef | None = Field(
        default=None, description="A Secret key holding the URL; the operator must be granted get on that Secret."
    )
    bearer_token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="A Secret key holding a token sent as 'Authorization: Bearer <token>'."
    )
    timeout: Duration | None = Field(
        default=None,
        description="Per attempt, Go duration in (0, 60s]; default 5s.",
        json_schema_extra=k8s(
            **{
                "x-kubernetes-validations": [
                    cel(
                        "duration(self) > duration('0s') && duration(self) <= duration('60s')",
                        "timeout must be in (0, 60s]",
                    )
                ]
            }
        ),
    )


class IncidentNotifierSpec(Model):
    selector: LabelSelector | None = Field(default=None, description="Incidents by label; empty: every Incident here.")
    severities: list[Severity] | None = Field(default=None, max_length=3, description="Default: all severities.")
    phases: list[IncidentPhase] | None = Field(default=None, max_length=5, description="Phases sent; default all.")
    webhook: Webhook


class NotifierDelivery(Model):
    incident: Annotated[str, Field(max_length=MAX_NAME)]
    uid: ShortStr | None = None
    phase: IncidentPhase
    at: datetime
    result: NotifyResult
    attempts: int = 0
    code: int | None = Field(default=None, description="The receiver's HTTP status, if it answered.")
    message: Text = ""


class DeliveredRecord(Model):
    uid: ShortStr
    incident: Annotated[str, Field(max_length=MAX_NAME)]
    phases: list[IncidentPhase] = Field(default_factory=list, max_length=5)
    closed: bool = False
    created: datetime | None = Field(default=None, description="The Incident's creationTimestamp.")


class IncidentNotifierStatus(Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16, json_schema_extra=CONDITIONS_EXTRA)
    delivered: list[DeliveredRecord] = Field(
        default_factory=list,
        max_length=MAX_DELIVERED,
        description="Phases done (delivered, or failed for good) per Incident UID; the oldest closed dropped first.",
    )
    forgotten_before: datetime | None = Field(
        default=None,
        description="Records of Incidents created up to this time were dropped from delivered: none is sent again.",
    )
    deliveries: list[NotifierDelivery] = Field(default_factory=list, max_length=MAX_DELIVERIES)


class IncidentNotifier(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: str = "modelreg.io/v1alpha1"
    kind: str = "IncidentNotifier"
    metadata: ObjectMeta
    spec: IncidentNotifierSpec
    status: IncidentNotifierStatus | None = None


# --------------------------------------------------------------------------- MetricSource, spec.monitoring
# (docs/metricsource.md)

#: The stages whose versions a MetricSource may be polled for.
MonitoredStage = Literal["Development", "Sandbox", "Production"]
#: Fields of a pulled snapshot that may be listed in ``spec.source.noData`` / ``invalid``.
SOURCE_FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.:-]{0,255}$"
#: An HTTP header name (RFC 9110 token).
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
MAX_QUERY = 4096
MAX_CUSTOM_QUERIES = 20
#: A MetricSource's name is at most a label value (it is written into a label).
MAX_SOURCE_NAME = 63
MIN_INTERVAL_SECONDS = 5
MAX_TIMEOUT_SECONDS = 60


def _whole_seconds_rule(field: str, minimum: int) -> list[JsonDict]:
    return [
        cel(
            "self.matches('^([0-9]+h)?([0-9]+m)?([0-9]+s)?$')",
            f"{field} must be a whole number of seconds (h, m and s with integers, such as 90s or 1m30s)",
        ),
        cel(f"duration(self) >= duration('{minimum}s')", f"{field} must be at least {minimum}s"),
    ]


def _interval(field: str) -> Any:
    return Field(
        default=None,
        pattern=DURATION_PATTERN,
        max_length=64,
        description=f"Go duration in whole seconds, at least {MIN_INTERVAL_SECONDS}s.",
        json_schema_extra=k8s(**{"x-kubernetes-validations": _whole_seconds_rule(field, MIN_INTERVAL_SECONDS)}),
    )


PromQL = Annotated[str, Field(min_length=1, max_length=MAX_QUERY)]


class HttpHeader(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.name.lowerAscii() != 'authorization'",
                    "no Authorization header here: use prometheus.bearerTokenSecretRef",
                    ".name",
                )
            ]
        }
    )
    name: Annotated[str, Field(min_length=1, max_length=256, pattern=HEADER_NAME_PATTERN)]
    value: Annotated[str, Field(max_length=4096, pattern=r"^[^\r\n]*$")] = Field(
        description="A fixed value (no newline). Not for secrets."
    )


class PrometheusSpec(Model):
    url: Annotated[str, Field(min_length=1, max_length=MAX_URI, pattern=URL_PATTERN)] = Field(
        description="http or https; /api/v1/query is appended.",
        json_schema_extra=k8s(
            **{
                "x-kubernetes-validations": [
                    cel(
                        "isURL(self) && url(self).getScheme() in ['http', 'https'] && url(self).getHost() != ''",
                        "url must be an http or https URL with a host",
                    )
                ]
            }
        ),
    )
    headers: list[HttpHeader] | None = Field(default=None, max_length=16)
    bearer_token_secret_ref: SecretKeyRef | None = None
    ca_config_map_ref: SecretKeyRef | None = None
    timeout: Annotated[str, Field(pattern=DURATION_PATTERN, max_length=64)] | None = Field(
        default=None,
        description="Go duration in (0, 60s]; default 10s.",
        json_schema_extra=k8s(
            **{
                "x-kubernetes-validations": [
                    cel(
                        f"duration(self) > duration('0s') && duration(self) <= duration('{MAX_TIMEOUT_SECONDS}s')",
                        f"timeout must be in (0, {MAX_TIMEOUT_SECONDS}s]",
                    )
                ]
            }
        ),
    )


class MetricQueries(Model):
    sample_count: PromQL = Field(description="Requests in the window (required).")
    error_count: PromQL | None = None
    ood_count: PromQL | None = None
    latency_p99_ms: PromQL | None = Field(default=None, alias="latencyP99Ms")
    custom: dict[MetricName, PromQL] | None = Field(default=None, max_length=MAX_CUSTOM_QUERIES)
    feature_histogram: PromQL | None = Field(
        default=None, description="Cumulative bucket counts of one feature ({{feature}}), one series per `le`."
    )


class MetricSourceSpec(Model):
    prometheus: PrometheusSpec
    queries: MetricQueries


class ProbeResult(Model):
    at: datetime
    ok: bool
    message: Annotated[str, Field(max_length=1024)] = ""


class MetricSourceStatus(Model):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list, max_length=16, json_schema_extra=CONDITIONS_EXTRA)
    last_probe: ProbeResult | None = None


class MetricSource(Model):
    model_config = ConfigDict(extra="ignore")
    api_version: str = "modelreg.io/v1alpha1"
    kind: str = "MetricSource"
    metadata: ObjectMeta
    spec: MetricSourceSpec
    status: MetricSourceStatus | None = None


class SourceRef(Model):
    name: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=MAX_SOURCE_NAME)]


class DriftReference(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("timestamp(self.start) < timestamp(self.end)", "driftReference.start must be before its end")
            ]
        }
    )
    version: Annotated[str, Field(pattern=VERSION_PATTERN, max_length=63)] | None = Field(
        default=None, description="Rendered as {{version}} in the reference query (default: this version)."
    )
    start: datetime
    end: datetime


#: A monitored feature's name: it is rendered into PromQL and recorded as ``feature:<name>``.
FeatureName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:-]*$")]


class Monitoring(Model):
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.features) || size(self.features) == 0 || has(self.driftReference)",
                    "monitoring.features needs monitoring.driftReference",
                    ".features",
                )
            ]
        }
    )
    source_ref: SourceRef = Field(description="A MetricSource in this namespace.")
    interval: str | None = _interval("interval")
    window: str | None = _interval("window")
    evaluation_delay: Duration | None = Field(default=None, description="≥ 0s (scrape lag).")
    stages: list[MonitoredStage] | None = Field(
        default=None, max_length=3, json_schema_extra=k8s(**{"x-kubernetes-list-type": "set"})
    )
    features: list[FeatureName] | None = Field(
        default=None, max_length=MAX_FEATURES, json_schema_extra=k8s(**{"x-kubernetes-list-type": "set"})
    )
    drift_reference: DriftReference | None = None


class EffectiveMonitoring(Model):
    source_ref: SourceRef
    interval: Duration
    window: Duration
    evaluation_delay: Duration
    stages: list[MonitoredStage] = Field(default_factory=list, max_length=3)
    features: list[FeatureName] = Field(default_factory=list, max_length=MAX_FEATURES)
    drift_reference: DriftReference | None = None


SourceField = Annotated[str, Field(pattern=SOURCE_FIELD_PATTERN, max_length=256)]


class SnapshotSource(Model):
    """Where a pulled snapshot came from: the source, the rendered queries, what had no data."""

    metric_source: Annotated[str, Field(pattern=DNS_SUBDOMAIN, max_length=MAX_SOURCE_NAME)]
    queries: dict[SourceField, Annotated[str, Field(max_length=2 * MAX_QUERY)]] | None = Field(
        default=None, max_length=MAX_CUSTOM_QUERIES + 2 * MAX_FEATURES + 8
    )
    no_data: list[SourceField] | None = Field(default=None, max_length=MAX_CUSTOM_QUERIES + MAX_FEATURES + 8)
    invalid: list[SourceField] | None = Field(default=None, max_length=MAX_CUSTOM_QUERIES + MAX_FEATURES + 8)


for _model in (RegisteredModelSpec, EffectivePolicy, PerformanceSnapshotSpec, RegisteredModelStatus):
    _model.model_rebuild()
for _kind in (RegisteredModel, PerformanceSnapshot):
    _kind.model_rebuild()
