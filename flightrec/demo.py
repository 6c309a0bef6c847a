"""The bundled demo agent: a scripted support agent that fails the way real ones do.

Run it with ``python -m flightrec.demo`` (``flightrec demo`` and ``make demo`` do, then open
the dump). It is deterministic: no network, a scripted fake LLM, fixed data, about a second.

The story of the recording, for whoever opens it:

1. A customer asks where their order is and whether they can get a refund. The agent plans,
   looks the customer up (its first call passes a bad argument: an *invocation* error),
   finds the order, reads the refund policy from the knowledge base and tracks the parcel.
2. The chat goes on; the context window fills up toward its limit. To make room the agent
   summarizes old messages and *evicts the refund policy*.
3. The customer asks for the refund. The agent has to fetch the policy again (the same tool
   call repeated, the same item retained again), first misreads it (a *reasoning* error it
   records itself) and is refused by the refund service (a *response* error).
4. It checks the parcel once more, but the carrier API now answers 503: *transient* errors,
   retried with back-off, each retry linked to the previous attempt. It gives up with an
   uncaught exception, which triggers the dump.

Everything is in the dump: steps, tool calls with their failure origins and retries, LLM
calls, memory retain/evict/summarize with context usage, a checkpoint per turn (diff two of
them to see what changed) and ``rec.findings()`` pointing at each of the problems above.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import flightrec

CONTEXT_LIMIT = 3000
SYSTEM_PROMPT = (
    "You are Ada, the support agent of Parcelly. Be brief and exact. Use the tools to look up "
    "customers, orders and shipments, and the knowledge base for policies. Never promise a "
    "refund the policy does not allow. "
) * 6
REFUND_POLICY = (
    "Refund policy (KB-114): a customer may get a full refund when a parcel is more than 10 "
    "business days late, counted from the promised delivery date; weekends and public holidays "
    "do not count. Partial refunds need a supervisor. "
) * 12


class CarrierUnavailable(RuntimeError):
    """The carrier API kept failing; the agent gives up."""


class CarrierError(Exception):
    """An HTTP error from the (fake) carrier API."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"{status_code} {message}")
        self.status_code = status_code


# ============================================================================ the world


CUSTOMERS = {"alice@example.com": {"id": "C-1042", "name": "Alice Martin", "tier": "gold"}}
ORDERS = {
    "ORD-2024-000123": {
        "customer": "C-1042",
        "items": ["espresso machine"],
        "promised": "2024-05-02",
        "tracking": "1Z999AA10123456784",
        "amount": 249.0,
    }
}
_carrier_calls = {"n": 0}


@flightrec.tool
def get_customer(email: str) -> dict[str, Any]:
    """Look a customer up by e-mail."""
    if not isinstance(email, str) or "@" not in email:
        raise TypeError(f"get_customer() expects an e-mail address, got {email!r}")
    time.sleep(0.004)
    return dict(CUSTOMERS[email])


@flightrec.tool
def lookup_order(order_id: str) -> dict[str, Any]:
    """Fetch an order."""
    time.sleep(0.006)
    return dict(ORDERS[order_id])


@flightrec.tool(name="search_kb")
def search_knowledge_base(query: str) -> dict[str, str]:
    """Search the knowledge base (there is one relevant article)."""
    time.sleep(0.008)
    return {"id": "KB-114", "title": "Refund policy", "text": REFUND_POLICY}


@flightrec.tool
def track_shipment(tracking: str) -> dict[str, Any]:
    """Ask the carrier where a parcel is; the carrier's API goes down after its first answer."""
    _carrier_calls["n"] += 1
    time.sleep(0.01)
    if _carrier_calls["n"] > 1:
        raise CarrierError(503, "Service Unavailable")
    return {"status": "in transit", "last_scan": "2024-05-06 Lyon hub", "eta": "unknown"}


@flightrec.tool
def issue_refund(order_id: str, amount: float) -> dict[str, Any]:
    """Ask the payments service for a refund; it answers with an error payload, not an exception."""
    time.sleep(0.005)
    answer = {"status": "denied", "reason": "not eligible: parcel 6 business days late (needs > 10)"}
    flightrec.tool_error("refund denied: not eligible yet", code="REFUND_NOT_ELIGIBLE")
    return answer


# ============================================================================ the fake LLM


SCRIPT = [
    "Plan: identify the customer, find the order, check the refund policy, track the parcel.",
    "The order ORD-2024-000123 is in transit; last scan at the Lyon hub on May 6.",
    "I understand the wait is frustrating. Your parcel is on its way; I am checking the details.",
    "Here is a summary of what we know so far about your delivery and the carrier's status.",
    "Let me check the refund policy again before I answer about the refund.",
    "The parcel is 12 days late, so you qualify for a refund. Issuing it now.",
    "Let me re-check the parcel's status with the carrier before we decide anything else.",
]


@dataclass
class FakeLLM:
    """Answers from a script, with a deterministic token count and latency."""

    model: str = "fake-gpt-4o-mini"
    turn: int = 0

    def complete(self, messages: list[dict[str, Any]]) -> str:
        """Return the next scripted answer, recorded as an LLM call."""
        answer = SCRIPT[min(self.turn, len(SCRIPT) - 1)]
        self.turn += 1
        prompt_tokens = sum(tokens(m["content"]) for m in messages)
        latency = 180.0 + 35.0 * self.turn
        time.sleep(0.01)
        flightrec.llm(
            model=self.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=tokens(answer),
            latency_ms=latency,
            request={"messages": len(messages), "last": messages[-1]["content"][:200]},
            response=answer,
        )
        return answer


def tokens(text: str) -> int:
    """A rough token count (4 characters a token), like the agent's own budget math."""
    return max(1, len(text) // 4)


# ============================================================================ the agent


@dataclass
class Agent:
    """The support agent: its conversation, its working memory and its plan."""

    llm: FakeLLM = field(default_factory=FakeLLM)
    messages: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    plan: list[str] = field(default_factory=list)
    said: int = 0

    # -------------------------------------------------------------- bookkeeping
    def used_tokens(self) -> int:
        """Tokens the next LLM call would carry."""
        return sum(tokens(m["content"]) for m in self.messages) + sum(tokens(v) for v in self.memory.values())

    def remember(self, item_id: str, text: str, reason: str, source: str) -> None:
        """Put an item in working memory."""
        self.memory[item_id] = text
        flightrec.memory.retain(item_id, content=text[:300], tokens=tokens(text), reason=reason, source=source)

    def forget(self, item_id: str, reason: str) -> None:
        """Drop an item from working memory."""
        text = self.memory.pop(item_id)
        flightrec.memory.evict(item_id, reason=reason, tokens=tokens(text))

    def say(self, role: str, content: str) -> None:
        """Append a message (a memory item too) and sample the context usage."""
        self.said += 1
        item_id = f"msg:{self.said}"
        self.messages.append({"id": item_id, "role": role, "content": content})
        flightrec.memory.retain(item_id, tokens=tokens(content), reason="conversation", source=role)
        flightrec.memory.context(self.used_tokens(), CONTEXT_LIMIT)

    def snapshot(self, label: str) -> None:
        """Checkpoint the whole state."""
        flightrec.checkpoint(
            {"messages": self.messages, "memory": self.memory, "facts": self.facts, "plan": self.plan},
            label=label,
        )

    def think(self) -> str:
        """One LLM call over the conversation and the memory."""
        context: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
        context += [{"role": "system", "content": v} for v in self.memory.values()]
        answer = self.llm.complete(context + self.messages)
        self.say("assistant", answer)
        return answer

    def make_room(self) -> None:
        """Near the context limit: summarize old messages and evict what seems done with."""
        old = [m["id"] for m in self.messages[1:5]]
        summary = "Summary: customer Alice (gold) waits for order ORD-2024-000123, in transit since May 6."
        flightrec.memory.summarize(old, into="summary:1", tokens=tokens(summary), reason="context nearly full")
        self.messages[1:5] = [{"id": "summary:1", "role": "system", "content": summary}]
        full = self.used_tokens() / CONTEXT_LIMIT
        self.forget("kb:refund-policy", reason=f"context {full:.0%} full after summarizing; policy already read")
        flightrec.memory.context(self.used_tokens(), CONTEXT_LIMIT)

    # -------------------------------------------------------------- the run
    def run(self, ticket: str) -> None:
        """Handle the ticket, turn by turn, until the carrier API breaks the agent."""
        with flightrec.step("triage", channel="chat"):
            self.say("user", ticket)
            self.plan = self.think().removeprefix("Plan: ").split(", ")
            self.snapshot("triage")

        with flightrec.step("lookup"):
            try:
                get_customer(["alice@example.com"])  # type: ignore[arg-type]  # the LLM sent a list
            except TypeError:
                flightrec.record("note", text="retrying get_customer with a plain string")
            self.facts["customer"] = get_customer("alice@example.com")
            order = lookup_order("ORD-2024-000123")
            self.facts["order"] = order
            self.remember("order:ORD-2024-000123", repr(order), reason="the ticket is about it", source="lookup_order")
            self.snapshot("lookup")

        with flightrec.step("policy"):
            doc = search_knowledge_base("refund policy late delivery")
            self.remember("kb:refund-policy", doc["text"], reason="customer may ask for a refund", source="search_kb")
            self.snapshot("policy")

        with flightrec.step("tracking"):
            self.facts["shipment"] = track_shipment(self.facts["order"]["tracking"])
            self.think()
            self.snapshot("tracking")

        for turn, text in enumerate(CHAT, start=1):
            with flightrec.step("chat", turn=turn):
                self.say("user", text)
                if self.used_tokens() > CONTEXT_LIMIT:  # over the limit: the LLM call would fail
                    self.make_room()
                self.think()
                self.snapshot(f"chat {turn}")

        with flightrec.step("refund"):
            self.say("user", "So, can I get my money back? It is really late now.")
            self.think()
            doc = search_knowledge_base("refund policy late delivery")  # needed again after all
            self.remember("kb:refund-policy", doc["text"], reason="needed for the refund answer", source="search_kb")
            self.think()
            flightrec.record(
                "error",
                origin="reasoning",
                message="counted 12 calendar days late; the policy counts business days (6)",
            )
            result = issue_refund("ORD-2024-000123", amount=249.0)
            self.facts["refund"] = result
            self.snapshot("refund refused")

        with flightrec.step("recheck"):
            self.think()
            self.facts["shipment"] = self.track_with_retries(self.facts["order"]["tracking"])

    def track_with_retries(self, tracking: str, attempts: int = 5) -> dict[str, Any]:
        """Call the carrier with exponential back-off; give up after ``attempts``."""
        delay = 0.005
        for attempt in range(1, attempts + 1):
            try:
                return track_shipment(tracking)
            except CarrierError as exc:
                self.snapshot(f"carrier down, attempt {attempt}")
                if attempt == attempts:
                    raise CarrierUnavailable(
                        f"track_shipment failed {attempts} times in a row ({exc}); giving up"
                    ) from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


CHAT = [
    "It was promised for May 2nd. What is going on? " + "I have been waiting for days and nobody answers. " * 30,
    "I need this machine for my café, every day without it costs me money. " * 40,
    "Can you at least tell me which carrier has it and when it will arrive? " * 35,
    "Also, last time I ordered the delivery was fine, so why is it different now? " * 30,
]


def main() -> int:
    """Run the scripted agent until it fails (the uncaught exception triggers the dump)."""
    # Sample resources fast enough for a run this short, unless the environment says otherwise.
    rec = flightrec.start(resources=None if "FLIGHTREC_RESOURCES" in os.environ else 0.05)
    ticket = "Customer alice@example.com: where is my order ORD-2024-000123? I want a refund if it is not here soon."
    flightrec.record("task", pin=True, prompt=ticket, agent="Ada", version="demo-1")
    if rec is not None:
        print(f"demo agent: recording; the failure at the end dumps into {rec.dump_dir}", file=sys.stderr)
    Agent().run(ticket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
