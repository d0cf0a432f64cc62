"""The gateway's API contract: OpenAI-shaped requests and replies, plus apportion's own fields.

A chat request's parameters are each honoured or refused with a 400 that names them (see `routes.py` and the
README's table); apportion's own options come through the openai client's `extra_body`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from service.tenants import Period

REQUEST_ID_LENGTH = 128  # characters, for the body's request_id and the X-Request-ID header alike


def _unicode(value: Any) -> Any:
    """Text must be valid Unicode: a lone surrogate (JSON's `\\ud800`) would be refused, or worse, by the
    engine, and would count against a healthy backend."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("text must be valid Unicode (a lone surrogate is not)") from None
    elif isinstance(value, list | tuple):
        for item in value:
            _unicode(item)
    elif isinstance(value, dict):
        for item in value.values():
            _unicode(item)
    return value


Unicode = AfterValidator(_unicode)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: Annotated[str | list[dict[str, Any]] | None, Unicode] = None

    def text(self) -> str:
        """The message's text; multi-part content keeps its text parts."""
        if isinstance(self.content, list):
            return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


PASSED_THROUGH = ("user", "presence_penalty", "frequency_penalty", "logit_bias", "response_format")
"""Request parameters sent to the backends as the client gave them."""


class ChatRequest(BaseModel):
    """`POST /v1/chat/completions`. The gateway picks the sample count; `n` must be 1 (one aggregated reply).

    Parameters it does not honour are kept (`model_extra`) so that the route can refuse each by name: nothing a
    client asks for is dropped in silence.
    """

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stop: Annotated[str | list[str] | None, Unicode] = None
    n: int | None = Field(default=None, ge=1)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    user: str | None = None
    # passed to the backends as given (vLLM and llama.cpp honour them)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = Field(default=None, max_length=300)
    response_format: Annotated[dict[str, Any] | None, Unicode] = None
    # apportion's options, sent through the openai client's `extra_body`
    max_samples: int | None = Field(default=None, ge=1, description="cap on the samples this query may draw")
    budget: float | None = Field(default=None, gt=0, description="hint: serve this query at this budget")
    request_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=REQUEST_ID_LENGTH,
        description="idempotency key: a repeat with the same body gets the stored reply, without new samples",
    )


class SolveRequest(BaseModel):
    """`POST /v1/solve`: a bare question, no chat scaffolding."""

    model_config = ConfigDict(extra="forbid")

    question: Annotated[str, Unicode] = Field(min_length=1)
    max_samples: int | None = Field(default=None, ge=1)


class ModelUsage(BaseModel):
    samples: int
    tokens: int
    cost: float


class Decision(BaseModel):
    """How the gateway answered: the aggregated answer and what it cost."""

    answer: str | None
    samples: int
    votes: dict[str, int]
    agreement: float
    policy: str
    lam: float | None = Field(serialization_alias="lambda")
    budget: float
    rounds: int
    failed_samples: int = 0
    degraded: list[str] = Field(default_factory=list)
    cost: float = 0.0
    """What the query cost, in the gateway's units (samples, or tokens × price)."""
    models: dict[str, ModelUsage] = Field(default_factory=dict)
    """Per model asked: samples, completion tokens, cost."""


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ReplyMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ReplyMessage
    finish_reason: str
    logprobs: None = None


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    apportion: Decision


class SolveResponse(BaseModel):
    answer: str | None
    samples: int
    votes: dict[str, int]
    agreement: float
    text: str


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "apportion"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TenantSpend(BaseModel):
    tenant: str
    queries: int
    samples: int
    cost: float
    quota: float | None = Field(serialization_alias="budget")
    """What the tenant may spend, in all or per period (`budget` in the API and the tenants file); None: no
    limit."""
    period: Period | None = Field(default=None, serialization_alias="budget_period")
    left: float | None
    """What is left of the budget (in this period, for a periodic one)."""


class ModelSpendView(BaseModel):
    """One model's totals since the ledger began: `units` are what it was charged for (samples or completion
    tokens) and `cost` is exactly price × units."""

    model: str
    price: float
    samples: int
    units: int
    cost: float


class BudgetView(BaseModel):
    """`GET /v1/budget`: the fleet's ledger, as the caller may see it (a tenant sees only its own spend)."""

    unit: str
    """What a cost counts: "samples", or "cost units (tokens × price)" and the like."""
    target: float
    realized: float
    operating_budget: float
    lam: float | None = Field(serialization_alias="lambda")
    queries: int
    cost: float
    """Spent by the queries the policy allocated since `since` (what `realized` averages)."""
    since: float
    """Unix time the ledger (and its window) started: when the target was last set."""
    store: Literal["redis", "local"]
    degraded: bool
    ledger_wiped_at: float | None = None
    """Unix time this gateway last found the shared ledger gone (a Redis that lost its data) and restored it."""
    tenants: list[TenantSpend]
    models: list[ModelSpendView] = Field(default_factory=list)


class TargetChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target: float = Field(gt=0, allow_inf_nan=False)


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
