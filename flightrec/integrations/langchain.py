"""LangChain and LangGraph: a callback handler that records runs as flightrec events.

:func:`enable` installs :class:`FlightrecCallbackHandler` globally through langchain-core's
configure hook, so every chain, graph, chat model, tool and retriever run in the process
is recorded without passing ``callbacks=`` anywhere (``import flightrec.auto`` does this as
soon as the application imports ``langchain_core``). Runs map onto the agent vocabulary:

* chains, agents and LangGraph nodes -> steps (``step_start`` / ``step_end``); runs that
  LangChain itself hides (tagged ``langsmith:hidden``: LangGraph's channel writes and
  routing) record nothing and their children hang under the visible parent;
* chat models and LLMs -> a step holding one ``llm`` event (model, token usage, the last
  messages of the prompt, the reply, latency, or the error); a stream that fails keeps the
  reply received until then (``partial``), one the caller closes early is not a failure
  (``stream_closed``). Streamed tokens are not recorded one by one (an event per token
  would put the recorder on the stream's hot path, and the reply is on the ``llm`` event
  anyway): a streamed call's ``llm`` event carries ``stream_chunks`` (the chunks received)
  and ``ttft_ms`` (the time from the call's start to the first one);
* tools -> ``tool_call`` / ``tool_result`` with the failure's origin; a repeated failed call
  with the same arguments in the same step is linked to it (``attempt``, ``retry_of``);
  a call the model asked for that no tool run was seen for, answered by an error
  ``ToolMessage`` (a LangGraph ``ToolNode`` asked for a tool it does not have), is a failed
  call too: the name and arguments the model gave, the message as the error
  (``UnknownTool``, origin ``invocation``, when it says so; else ``ToolMessageError``);
* retrievers -> a step holding a ``retrieval`` event with the documents returned;
* LangGraph state: the state a node starts from, and the graph's final state, are
  recorded as checkpoints (``langgraph:<node>#<step>``, ``langgraph:final``).

Importing this module imports ``langchain_core``.
"""

from __future__ import annotations

import contextvars
import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage, ToolMessage
from pydantic import BaseModel as PydanticModel

from ._bridge import Owners, SpanBridge, bounded, checkpoint, error_text, maybe_json, tail

__all__ = ["FlightrecCallbackHandler", "disable", "enable"]

_HIDDEN = "langsmith:hidden"
_CONTROL_FLOW = frozenset({"GraphInterrupt", "NodeInterrupt", "GraphBubbleUp", "ParentCommand", "Interrupt"})
"""LangGraph exceptions that are control flow (interrupts, hand-offs), not failures."""
_CHUNK_ROLES = {
    "AIMessageChunk": "ai",
    "HumanMessageChunk": "human",
    "SystemMessageChunk": "system",
    "ToolMessageChunk": "tool",
    "FunctionMessageChunk": "function",
    "ChatMessageChunk": "chat",
}
"""A streamed message's ``type`` is its chunk class's name: the role of the whole message."""
MAX_DOCUMENTS = 20
_MAX_IN_FLIGHT = 10_000
_MAX_ASKED = 1024
"""Most tool calls asked for by a model and not yet run that are remembered."""
_UNKNOWN_TOOL = "is not a valid tool"
"""What a ToolNode's answer to a call of a tool it does not have says."""


def _attr(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, also when looking raises something else than
    AttributeError (a remote proxy, a lazy ORM row): the object is then stored as its repr."""
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


MAX_DEPTH = 40
"""Deepest nesting that :func:`_plain` converts (a LangGraph state is checkpointed whole, and
the checkpoint store keeps 48 levels); a deeper value is stored as its repr."""


def _plain(obj: Any, depth: int = 0, on_path: set[int] | None = None) -> Any:
    """LangChain objects (messages, documents, pydantic models) as plain data.

    A container met again inside itself is ``"<cycle>"``, as in flightrec's events and
    checkpoints; ``on_path`` holds the ids of the containers being converted.
    """
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if depth > MAX_DEPTH:
        return repr(obj)
    if isinstance(obj, (dict, list, tuple)):
        if on_path is None:
            on_path = set()
        key = id(obj)
        if key in on_path:
            return "<cycle>"
        on_path.add(key)
        try:
            if isinstance(obj, dict):
                return {str(k): _plain(v, depth + 1, on_path) for k, v in obj.items()}
            return [_plain(v, depth + 1, on_path) for v in obj]
        finally:
            on_path.discard(key)
    if isinstance(obj, BaseMessage):
        # Its fields, read from the model's __dict__: getattr() of a field another message
        # class has (tool_call_id on a HumanMessage) goes through pydantic's __getattr__ and
        # an AttributeError, 5 us a look, and a LangGraph state of 4000 messages is walked at
        # every node (60 ms a node).
        return _message(obj.__dict__, depth, on_path)
    content = _attr(obj, "content")
    msg_type = _attr(obj, "type")
    if content is not None and isinstance(msg_type, str):  # a message-like object
        return _message({k: _attr(obj, k) for k in ("content", "type", *_MESSAGE_FIELDS)}, depth, on_path)
    page = _attr(obj, "page_content")
    if isinstance(page, str):  # a Document
        return {"page_content": page, "metadata": _plain(_attr(obj, "metadata"), depth + 1, on_path)}
    dump = _attr(obj, "model_dump")
    if callable(dump):
        try:
            return _plain(dump(), depth + 1, on_path)
        except Exception:
            return repr(obj)
    return obj


_MESSAGE_FIELDS = ("name", "tool_call_id", "status", "tool_calls")


def _message(fields: dict[str, Any], depth: int, on_path: set[int] | None) -> dict[str, Any]:
    """A message's role, content, and the fields of its kind that are set."""
    msg_type = fields.get("type")
    out: dict[str, Any] = {
        "role": _CHUNK_ROLES.get(msg_type, msg_type) if isinstance(msg_type, str) else msg_type,
        "content": _plain(fields.get("content"), depth + 1, on_path),
    }
    for attr in ("name", "tool_call_id", "status"):
        value = fields.get(attr)
        if value:
            out[attr] = value
    tool_calls = fields.get("tool_calls")
    if tool_calls:
        out["tool_calls"] = [
            {"name": c.get("name"), "args": _plain(c.get("args"), depth + 1, on_path), "id": c.get("id")}
            for c in tool_calls
        ]
    return out


def _state(value: Any) -> dict[str, Any] | None:
    """A LangGraph state as a dict of its fields: a dict as is, a pydantic model or a dataclass
    (the other state schemas LangGraph takes) by its fields; None for anything else."""
    if isinstance(value, dict):
        return value
    if isinstance(value, PydanticModel):
        return dict(value.__dict__)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
    return None


def _name(serialized: dict[str, Any] | None, kwargs: dict[str, Any], default: str) -> str:
    name = kwargs.get("name")
    if name:
        return str(name)
    if serialized:
        if serialized.get("name"):
            return str(serialized["name"])
        ident = serialized.get("id")
        if isinstance(ident, list) and ident:
            return str(ident[-1])
    return default


def _model(serialized: dict[str, Any] | None, metadata: dict[str, Any] | None, invocation: Any) -> str | None:
    if metadata and metadata.get("ls_model_name"):
        return str(metadata["ls_model_name"])
    for source in (invocation, (serialized or {}).get("kwargs")):
        if isinstance(source, dict):
            for key in ("model", "model_name", "model_id"):
                if source.get(key):
                    return str(source[key])
    return None


def _usage(response: Any) -> tuple[int | None, int | None, str | None]:
    """(prompt tokens, completion tokens, model) from an ``LLMResult``.

    The message's ``usage_metadata`` (langchain-core's standard) when there is one, else the
    provider's ``llm_output`` usage: ChatOpenAI and ChatAnthropic report the same usage in
    both, and adding them counted every token twice. One call's choices (``n > 1``) each
    carry the whole response's usage: the first one is taken.
    """
    llm_output = getattr(response, "llm_output", None) or {}
    model = llm_output.get("model_name") or llm_output.get("model")
    for gens in getattr(response, "generations", None) or ():
        for gen in gens:
            message = getattr(gen, "message", None)
            rmeta = getattr(message, "response_metadata", None) or {}
            model = model or rmeta.get("model_name") or rmeta.get("model")
            meta = getattr(message, "usage_metadata", None)
            if meta:
                return _int(meta.get("input_tokens")), _int(meta.get("output_tokens")), model
    usage = llm_output.get("token_usage") or llm_output.get("usage") or {}
    if not isinstance(usage, dict):
        return None, None, model
    prompt = usage.get("prompt_tokens", usage.get("input_tokens"))
    completion = usage.get("completion_tokens", usage.get("output_tokens"))
    return _int(prompt), _int(completion), model


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _reply(response: Any) -> Any:
    out = []
    for gens in getattr(response, "generations", None) or ():
        for gen in gens:
            message = getattr(gen, "message", None)
            out.append(_plain(message) if message is not None else getattr(gen, "text", None))
    return out[0] if len(out) == 1 else out


def _partial(response: Any) -> Any:
    """The reply streamed before a stream ended early, from the ``LLMResult`` LangChain passes
    to ``on_llm_error``: its first generation merges the chunks received (the others hold the
    error's HTTP details). None when nothing was received."""
    generations = getattr(response, "generations", None)
    if not generations or not generations[0]:
        return None
    message = _attr(generations[0][0], "message")
    reply = _plain(message) if message is not None else _attr(generations[0][0], "text")
    if isinstance(reply, dict):
        return reply if reply.get("content") or reply.get("tool_calls") else None
    return reply or None


_owners = Owners()
"""Which handler records a run: several can see one (the global one and one given to a model
with ``callbacks=[...]``, or two given at different levels)."""


class FlightrecCallbackHandler(BaseCallbackHandler):
    """Records LangChain / LangGraph runs into the running flight recorder.

    Pass it as a callback (``config={"callbacks": [FlightrecCallbackHandler()]}``) or let
    :func:`enable` install it for every run. It does nothing while no recorder runs and
    never raises into LangChain.

    Args:
        checkpoints: record LangGraph node input states and final states as checkpoints.
    """

    raise_error = False
    run_inline = True  # callbacks in the caller's thread and order, also for async runs

    def __init__(self, checkpoints: bool = True) -> None:
        super().__init__()
        self.bridge = SpanBridge("langchain")
        self.checkpoints = checkpoints
        self._graph_roots: set[UUID] = set()
        self._models: dict[UUID, str | None] = {}
        self._requests: dict[UUID, Any] = {}
        """Prompts of LLM calls in flight: stored with the result, one event per call."""
        self._streams: dict[UUID, list[int]] = {}
        """LLM run id -> [first chunk's perf_counter_ns, chunks] of a stream."""
        self._asked: OrderedDict[str, tuple[str, Any]] = OrderedDict()
        """Tool call id -> (name, arguments) of the calls models asked for that no tool has
        started yet: one answered by an error ToolMessage never ran (an unknown tool)."""

    def _claim(self, run_id: UUID) -> bool:
        """Whether this handler records the run starting now (no other handler did first)."""
        return _owners.claim(run_id, self)

    def _owns(self, run_id: UUID) -> bool:
        """Whether this handler records the run ``run_id`` (or no handler saw it start)."""
        return _owners.owns(run_id, self)

    # ------------------------------------------------------------------ chains / graph nodes
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chain, agent or graph node started: a step (hidden runs pass through)."""
        if not self._claim(run_id):
            return
        try:
            if tags and _HIDDEN in tags:
                self.bridge.passthrough(run_id, parent_run_id)
                return
            name = _name(serialized, kwargs, "chain")
            attrs: dict[str, Any] = {"run_id": str(run_id)}
            node = (metadata or {}).get("langgraph_node")
            if node is not None:
                attrs["langgraph_node"] = node
                attrs["langgraph_step"] = (metadata or {}).get("langgraph_step")
            if tags:
                attrs["tags"] = [t for t in tags if not t.startswith("seq:")][:10]
            self.bridge.step_start(run_id, parent_run_id, name, attrs)
            if parent_run_id is None and node is None and name == "LangGraph":
                self._graph_roots.add(run_id)
            state = _state(inputs) if self.checkpoints and node is not None and node == name else None
            if state is not None:
                self._checkpoint(state, f"langgraph:{node}#{attrs['langgraph_step']}", run_id)
        except Exception:
            self._count_error()

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        """A chain ended: ``step_end`` (and the final state of a LangGraph graph)."""
        if not self._owns(run_id):
            return
        try:
            if self._asked:
                self._refused_calls(outputs, run_id)
            if self.checkpoints and run_id in self._graph_roots:
                self._graph_roots.discard(run_id)
                state = _state(outputs)
                if state is not None:
                    self._checkpoint(state, "langgraph:final", run_id)
            self.bridge.step_end(run_id)
        except Exception:
            self._count_error()

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """A chain failed (or was interrupted, which is not a failure)."""
        if not self._owns(run_id):
            return
        try:
            self._graph_roots.discard(run_id)
            self.bridge.step_end(run_id, error=error, benign=type(error).__name__ in _CONTROL_FLOW)
        except Exception:
            self._count_error()

    def _refused_calls(self, outputs: Any, run_id: UUID) -> None:
        """Record the asked-for calls that ``outputs`` answer with an error ToolMessage although
        no tool ran for them (a ToolNode refusing a tool it does not have): failed calls."""
        for group in outputs.values() if isinstance(outputs, dict) else (outputs,):
            for msg in group if isinstance(group, (list, tuple)) else (group,):
                if not isinstance(msg, ToolMessage) or msg.status != "error":
                    continue
                asked = self._asked.pop(msg.tool_call_id, None)
                if asked is None:
                    continue
                name, args = asked
                text = error_text(str(msg.content))
                unknown = _UNKNOWN_TOOL in text
                key = ("refused", run_id, msg.tool_call_id)
                self.bridge.tool_start(key, run_id, name, args, {"ext_call_id": msg.tool_call_id})
                self.bridge.tool_end(
                    key,
                    run_id,
                    result=text,
                    error=text,
                    # (any other error answer: a tool run without callbacks, a middleware's refusal)
                    error_type="UnknownTool" if unknown else "ToolMessageError",
                    extra={"origin": "invocation"} if unknown else None,
                )

    def _remember_asked(self, response: Any) -> None:
        """Note the tool calls a model's reply asks for (id -> name, arguments)."""
        for gens in getattr(response, "generations", None) or ():
            for gen in gens:
                for call in _attr(_attr(gen, "message"), "tool_calls") or ():
                    if isinstance(call, dict) and call.get("id"):
                        self._asked[str(call["id"])] = (str(call.get("name")), _plain(call.get("args")))
                        if len(self._asked) > _MAX_ASKED:
                            self._asked.popitem(last=False)

    def _checkpoint(self, state: dict[str, Any], label: str, run_id: UUID) -> None:
        from ..context import current_span

        token = current_span.set(self.bridge.context_of(run_id))
        try:
            checkpoint(_plain(state), label)
        finally:
            current_span.reset(token)

    # ------------------------------------------------------------------ LLMs
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A chat model call started: a step that will hold the ``llm`` event."""
        self._llm_start(
            serialized, messages[0] if len(messages) == 1 else messages, run_id, parent_run_id, metadata, kwargs
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A (completion) LLM call started."""
        self._llm_start(serialized, prompts, run_id, parent_run_id, metadata, kwargs)

    def _llm_start(
        self,
        serialized: dict[str, Any] | None,
        request: Any,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        kwargs: dict[str, Any],
    ) -> None:
        if not self._claim(run_id):
            return
        try:
            model = _model(serialized, metadata, kwargs.get("invocation_params"))
            name = _name(serialized, kwargs, "llm")
            attrs: dict[str, Any] = {"run_id": str(run_id), "model": model}
            node = (metadata or {}).get("langgraph_node")
            if node is not None:
                attrs["langgraph_node"] = node
            self.bridge.llm_start(run_id, parent_run_id, name, attrs)
            if len(self._models) < _MAX_IN_FLIGHT:
                self._models[run_id] = model
                self._requests[run_id] = request
        except Exception:
            self._count_error()

    def on_llm_new_token(
        self,
        token: Any,
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """A streamed chunk arrived: counted, and the first one timed (see the module docstring)."""
        try:
            stream = self._streams.get(run_id)
            if stream is None:
                if run_id not in self._models:  # (not a call this handler records)
                    return
                stream = self._streams[run_id] = [0, 0]
            if not token and not _attr(_attr(chunk, "message"), "tool_call_chunks"):
                return  # (the empty chunk that marks a stream's end)
            if not stream[1]:
                stream[0] = time.perf_counter_ns()
            stream[1] += 1
        except Exception:
            self._count_error()

    def _stream_summary(self, run_id: UUID) -> dict[str, Any] | None:
        """``stream_chunks`` and ``ttft_ms`` of a streamed call (None for one not streamed)."""
        stream = self._streams.pop(run_id, None) if self._streams else None
        if stream is None or not stream[1]:
            return None
        out: dict[str, Any] = {"stream_chunks": stream[1]}
        started = self.bridge.started_ns(run_id)
        if started is not None:
            out["ttft_ms"] = round((stream[0] - started) / 1e6, 3)
        return out

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        """An LLM call returned: ``llm`` (tokens, reply) and ``step_end``."""
        if not self._owns(run_id):
            return
        try:
            prompt, completion, model = _usage(response)
            self._remember_asked(response)
            request = self._requests.pop(run_id, None)
            self.bridge.llm_end(
                run_id,
                parent_run_id,
                model=self._models.pop(run_id, None) or model,
                prompt_tokens=prompt,
                completion_tokens=completion,
                request=_plain(tail(request)),
                response=_reply(response),
                extra=self._stream_summary(run_id),
            )
        except Exception:
            self._count_error()

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """An LLM call failed: ``llm`` with the error and the reply streamed until then, and
        ``step_end``. A stream the caller closed early did not fail: ``stream_closed``."""
        if not self._owns(run_id):
            return
        try:
            request = _plain(tail(self._requests.pop(run_id, None)))
            model = self._models.pop(run_id, None)
            partial = _partial(kwargs.get("response"))
            extra = self._stream_summary(run_id) or {}
            if isinstance(error, GeneratorExit):  # the caller stopped reading (break, close())
                extra["stream_closed"] = True
                self.bridge.llm_end(run_id, parent_run_id, model=model, request=request, response=partial, extra=extra)
                return
            if partial is not None:
                extra["partial"] = True
            self.bridge.llm_end(
                run_id,
                parent_run_id,
                model=model,
                request=request,
                response=partial,
                error=error,
                extra=extra or None,
            )
        except Exception:
            self._count_error()

    # ------------------------------------------------------------------ tools
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A tool was called: ``tool_call`` in the enclosing step."""
        if not self._claim(run_id):
            return
        try:
            args = _plain(inputs) if inputs is not None else maybe_json(input_str)
            extra = {"ext_call_id": kwargs["tool_call_id"]} if kwargs.get("tool_call_id") else None
            if extra is not None and self._asked:
                self._asked.pop(str(extra["ext_call_id"]), None)  # (it runs)
            self.bridge.tool_start(run_id, parent_run_id, _name(serialized, kwargs, "tool"), args, extra)
        except Exception:
            self._count_error()

    def on_tool_end(self, output: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        """A tool returned: ``tool_result`` (a ToolMessage's error status counts as a failure)."""
        if not self._owns(run_id):
            return
        try:
            # cut before looking into it: a tool can return 200k rows, and _plain walks them all
            output, full = bounded(output)
            extra = {"result_len": full} if full is not None else None
            result = _plain(output)
            if isinstance(result, dict) and result.get("status") == "error":
                self.bridge.tool_end(
                    run_id,
                    parent_run_id,
                    result=result.get("content"),
                    error=str(result.get("content")),
                    error_type="ToolMessageError",
                    extra=extra,
                )
            else:
                if isinstance(result, dict) and result.get("role") == "tool":
                    result = maybe_json(result.get("content"))
                self.bridge.tool_end(run_id, parent_run_id, result=result, extra=extra)
        except Exception:
            self._count_error()

    def on_tool_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """A tool raised: ``tool_result`` with the error and its origin."""
        if not self._owns(run_id):
            return
        try:
            self.bridge.tool_end(run_id, parent_run_id, error=error)
        except Exception:
            self._count_error()

    # ------------------------------------------------------------------ retrievers
    def on_retriever_start(
        self,
        serialized: dict[str, Any] | None,
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A retriever was queried: a step."""
        if not self._claim(run_id):
            return
        try:
            self.bridge.step_start(
                run_id, parent_run_id, _name(serialized, kwargs, "retriever"), {"run_id": str(run_id), "query": query}
            )
        except Exception:
            self._count_error()

    def on_retriever_end(
        self, documents: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """A retriever returned: a ``retrieval`` event with the documents, then ``step_end``."""
        if not self._owns(run_id):
            return
        try:
            docs = list(documents or ())
            self.bridge.event(run_id, "retrieval", {"documents": _plain(docs[:MAX_DOCUMENTS]), "count": len(docs)})
            self.bridge.step_end(run_id)
        except Exception:
            self._count_error()

    def on_retriever_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        """A retriever failed."""
        if not self._owns(run_id):
            return
        try:
            self.bridge.step_end(run_id, error=error)
        except Exception:
            self._count_error()

    # ------------------------------------------------------------------ agents and the rest
    def on_agent_action(self, action: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        """A (classic) agent chose an action: an ``agent_action`` event."""
        self._event(
            "agent_action",
            run_id,
            lambda: {
                "tool": _attr(action, "tool"),
                "tool_input": _plain(_attr(action, "tool_input")),
                "log": _attr(action, "log"),
            },
        )

    def on_agent_finish(self, finish: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        """A (classic) agent finished: an ``agent_finish`` event."""
        self._event("agent_finish", run_id, lambda: {"output": _plain(_attr(finish, "return_values"))})

    def on_retry(self, retry_state: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        """A run is being retried (tenacity): a ``retry`` event."""

        def data() -> dict[str, Any]:
            outcome = _attr(retry_state, "outcome")
            exc = outcome.exception() if outcome is not None and _attr(outcome, "failed") else None
            return {
                "attempt": _attr(retry_state, "attempt_number"),
                "error": f"{type(exc).__name__}: {error_text(exc)}" if exc is not None else None,
            }

        self._event("retry", run_id, data)

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A custom event dispatched by user code: recorded as ``custom`` with its name."""
        self._event("custom", run_id, lambda: {"name": name, "data": _plain(data)})

    def _event(self, kind: str, run_id: UUID, data: Callable[[], dict[str, Any]]) -> None:
        """Record ``kind`` with the payload ``data()`` builds; a failure is counted, never raised."""
        if not self._owns(run_id):
            return
        try:
            self.bridge.event(run_id, kind, data())
        except Exception:
            self._count_error()

    @staticmethod
    def _count_error() -> None:
        from .. import api

        rec = api._recorder
        if rec is not None:
            rec.errors += 1


_handler: FlightrecCallbackHandler | None = None
_var: contextvars.ContextVar[FlightrecCallbackHandler | None] | None = None


def enable() -> FlightrecCallbackHandler:
    """Install the handler for every LangChain run in the process (idempotent).

    Uses langchain-core's ``register_configure_hook`` with a context variable whose default
    is the handler, so runs in every thread and task see it.

    Returns:
        The installed handler.
    """
    global _handler, _var
    if _handler is not None:
        return _handler
    from langchain_core.tracers.context import register_configure_hook

    handler = FlightrecCallbackHandler()
    var: contextvars.ContextVar[FlightrecCallbackHandler | None] = contextvars.ContextVar(
        "flightrec_langchain_handler", default=handler
    )
    register_configure_hook(var, True, FlightrecCallbackHandler)
    _handler, _var = handler, var
    return handler


def disable() -> None:
    """Remove the global handler installed by :func:`enable`."""
    global _handler, _var
    if _var is None:
        return
    from langchain_core.tracers import context as lc_context

    hooks = lc_context._configure_hooks
    hooks[:] = [h for h in hooks if h[0] is not _var]
    _handler, _var = None, None
