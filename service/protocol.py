"""The gateway's API contract: OpenAI-shaped requests and replies, plus apportion's own fields.

Requests accept the fields the official `openai` client sends and ignore the rest (`extra="ignore"`), so a
client upgrade that adds a field does not break the gateway. apportion's options come through `extra_body`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text; multi-part content keeps its text parts."""
        if isinstance(self.content, list):
            return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """`POST /v1/chat/completions`. The gateway picks the sample count; `n` must be 1 (one aggregated reply)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int | None = Field(default=None, ge=1)
    stream: bool | None = None
    user: str | None = None
    # apportion's options, sent through the openai client's `extra_body`
    max_samples: int | None = Field(default=None, ge=1, description="cap on the samples this query may draw")
    budget: float | None = Field(default=None, gt=0, description="hint: serve this query at this budget")
    request_id: str | None = Field(default=None, max_length=128, description="idempotency key for accounting")


class SolveRequest(BaseModel):
    """`POST /v1/solve`: a bare question, no chat scaffolding."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1)
    max_samples: int | None = Field(default=None, ge=1)


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
    quota: int | None = Field(serialization_alias="budget")
    """Samples the tenant may spend in all (`budget` in the API and the tenants file); None: no limit."""
    left: int | None


class BudgetView(BaseModel):
    """`GET /v1/budget`: the fleet's ledger, as the caller may see it (a tenant sees only its own spend)."""

    target: float
    realized: float
    operating_budget: float
    lam: float | None = Field(serialization_alias="lambda")
    queries: int
    samples: int
    since: float
    """Unix time the ledger (and its window) started: when the target was last set."""
    store: Literal["redis", "local"]
    degraded: bool
    tenants: list[TenantSpend]


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
