"""Other AI span conventions, read as the GenAI semantic conventions the OTel processor maps.

OpenInference (Arize Phoenix's instrumentors: ``openinference.span.kind``, ``llm.model_name``,
``llm.token_count.*``, ``llm.input_messages.N.message.*``, ``tool.name``, ``input.value``…) and
OpenLLMetry / Traceloop (``llm.request.type``, ``traceloop.span.kind``,
``traceloop.entity.*``, ``gen_ai.prompt.N.*``, ``gen_ai.completion.N.*``, ``llm.usage.*``)
describe the same LLM calls and tool calls with other names. :func:`as_genai` renames them,
so that a span from those instrumentors is recorded as an ``llm`` event or a tool call like a
GenAI one instead of as a plain step; the attributes it renames are not also kept as the
step's. A span that already says ``gen_ai.operation.name`` keeps its own reading.
"""

from __future__ import annotations

from typing import Any

_OPENINFERENCE_OPS = {"LLM": "chat", "EMBEDDING": "embeddings", "TOOL": "execute_tool", "AGENT": "invoke_agent"}
_REQUEST_TYPE_OPS = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
_TRACELOOP_OPS = {"tool": "execute_tool", "agent": "invoke_agent"}

# (source attribute, GenAI attribute): renamed when the GenAI one is absent
_RENAMES = (
    ("llm.model_name", "gen_ai.request.model"),
    ("llm.request.model", "gen_ai.request.model"),
    ("llm.response.model", "gen_ai.response.model"),
    ("llm.token_count.prompt", "gen_ai.usage.input_tokens"),
    ("llm.token_count.completion", "gen_ai.usage.output_tokens"),
    ("llm.usage.prompt_tokens", "gen_ai.usage.input_tokens"),
    ("llm.usage.completion_tokens", "gen_ai.usage.output_tokens"),
)
# flattened message lists: prefix -> the GenAI attribute holding them as one list
_MESSAGE_LISTS = (
    ("llm.input_messages.", "gen_ai.input.messages"),
    ("llm.output_messages.", "gen_ai.output.messages"),
    ("gen_ai.prompt.", "gen_ai.input.messages"),
    ("gen_ai.completion.", "gen_ai.output.messages"),
)
_MARKERS = (
    "openinference.span.kind",
    "llm.request.type",
    "traceloop.span.kind",
    "gen_ai.prompt.0.content",
    "gen_ai.prompt.0.role",
    "gen_ai.completion.0.content",
)


def as_genai(attrs: dict[str, Any]) -> dict[str, Any]:
    """``attrs`` with OpenInference and OpenLLMetry attributes renamed to GenAI ones.

    Returns ``attrs`` itself (unchanged) when none of them is there: the usual span costs
    one lookup per marker.
    """
    if not any(m in attrs for m in _MARKERS):
        return attrs
    out = dict(attrs)
    op = out.get("gen_ai.operation.name")
    if op is None:
        op = (
            _OPENINFERENCE_OPS.get(str(out.get("openinference.span.kind", "")).upper())
            or _REQUEST_TYPE_OPS.get(str(out.get("llm.request.type", "")).lower())
            or _TRACELOOP_OPS.get(str(out.get("traceloop.span.kind", "")).lower())
        )
        if op is not None:
            out["gen_ai.operation.name"] = op
            out.pop("llm.request.type", None)
    for source, target in _RENAMES:
        if source in out:
            value = out.pop(source)
            out.setdefault(target, value)
    for prefix, target in _MESSAGE_LISTS:
        messages = _collect(out, prefix)
        if messages:
            out.setdefault(target, messages)
    if op == "execute_tool":
        _tool(out)
    elif op in ("chat", "text_completion", "embeddings"):
        _io(out, "gen_ai.input.messages", "gen_ai.output.messages")
    return out


def _collect(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Take ``prefix``N.rest attributes out of ``attrs``: one dict per N, in order.

    OpenInference nests one more level (``llm.input_messages.0.message.role``): its
    ``message.`` is dropped, so both give ``{"role": ..., "content": ...}``.
    """
    found: dict[int, dict[str, Any]] = {}
    for key in [k for k in attrs if k.startswith(prefix)]:
        index, _, rest = key[len(prefix) :].partition(".")
        if not index.isdigit() or not rest:
            continue
        value = attrs.pop(key)
        rest = rest.removeprefix("message.")
        found.setdefault(int(index), {})[rest] = value
    return [found[i] for i in sorted(found)]


def _tool(attrs: dict[str, Any]) -> None:
    """A tool span's name, arguments, result and call id under their GenAI names."""
    for source, target in (
        ("tool.name", "gen_ai.tool.name"),
        ("traceloop.entity.name", "gen_ai.tool.name"),
        ("tool_call.id", "gen_ai.tool.call.id"),
        ("traceloop.entity.input", "gen_ai.tool.call.arguments"),
        ("traceloop.entity.output", "gen_ai.tool.call.result"),
    ):
        if source in attrs and target not in attrs:
            attrs[target] = attrs.pop(source)
    _io(attrs, "gen_ai.tool.call.arguments", "gen_ai.tool.call.result")


def _io(attrs: dict[str, Any], into: str, out_of: str) -> None:
    """OpenInference's ``input.value`` / ``output.value`` as the span's input and output."""
    for source, target in (("input.value", into), ("output.value", out_of)):
        if source in attrs and target not in attrs:
            attrs[target] = attrs.pop(source)
            attrs.pop(source.replace(".value", ".mime_type"), None)
