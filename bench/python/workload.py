#!/usr/bin/env python3
"""Switchboard's benchmark workload for the Python reference, livekit-agents 1.8.9.

It drives the shared 11-turn booking cycle (see ``bench/README.md``) through the public
``AgentSession`` API in lean text mode, with a scripted fake LLM that answers
instantly. The Rust side (``bench/rust``, crate ``switchboard-bench``) implements the
same modes and prints the same JSON keys; ``bench/compare.sh`` runs both.

    workload.py verify                       # per-turn agent + LLM request check
    workload.py latency  [--samples 500]     # settled time per turn kind
    workload.py session  [--samples 500]     # start (incl. greeting) and close
    workload.py memory   [--sessions 1,10,100,1000] [--turns 5]
    workload.py throughput [--sessions 1,10,100,1000] [--min-turns 2000]
    workload.py cold     [--runs 5]          # exec -> first completed turn

Every mode runs its measurement in a fresh child process of this script (one per
session count for memory/throughput, one per run for cold). The parent prints one JSON
object on stdout; progress goes to stderr.
"""

from __future__ import annotations

import time

T_EXEC = time.perf_counter()  # first thing the interpreter does in this file

import argparse
import asyncio
import gc
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

HERE = os.path.abspath(__file__)
COLD_MARK = "@@first-turn-complete@@"


def log(msg: str) -> None:
    print(f"[py-bench] {msg}", file=sys.stderr, flush=True)


# ======================================================================================
# The workload definition. The Rust side mirrors these tables exactly.
# ======================================================================================

# Scripted model behaviour, keyed by the *label* of a request (see ``request_label``).
# A value is either reply text (streamed one word per chunk) or ("tool", name, args).
SCRIPT: dict[str, Any] = {
    # on_enter greetings (generate_reply(instructions=<label>))
    "enter:greeter": "Welcome to Bistro Rust, what can I do for you?",
    "enter:booking": "This is reservations, which day are you thinking of?",
    "enter:contact": "Please tell me an email address for the booking.",
    "enter:name": "Under which name should I put the table?",
    "enter:party": "How many guests will there be in total?",
    # user turns
    "hi there": "Hello! Ask me about our hours or I can book you a table.",
    "what are your opening hours": ("tool", "get_hours", {}),
    "I would like to book a table": ("tool", "transfer_to_booking", {}),
    "is friday evening available": ("tool", "check_availability", {"day": "friday"}),
    "please take my contact details": ("tool", "collect_contact", {}),
    "my email is jane@example.com": ("tool", "record_email", {"email": "jane@example.com"}),
    "add the party details": ("tool", "collect_party_details", {}),
    "the name is Jane Doe": ("tool", "record_name", {"name": "Jane Doe"}),
    "four people": ("tool", "record_party_size", {"size": 4}),
    "thanks that is all": "Glad to help, anything else before you go?",
    "take me back to the front desk": ("tool", "back_to_greeter", {}),
    # follow-ups after a tool result
    "result:get_hours": "We open Tuesday to Sunday, from noon to eleven at night.",
    "result:transfer_to_booking": "Let me put you through to our reservations desk now.",
    "result:check_availability": "Friday evening we still have seven and half past eight.",
    "result:collect_contact": "Got it, the confirmation will go to jane@example.com.",
    "result:collect_party_details": "All set, a table for four in the name of Jane Doe.",
    "result:back_to_greeter": "Of course, sending you back to the front desk.",
    # the TaskGroup's own chat-context summarisation request
    "summary": "Caller booked under Jane Doe for a party of four.",
}

# One cycle: (kind, user text, agent after the turn, labels of the LLM requests made).
CYCLE: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("plain", "hi there", "Greeter", ("hi there",)),
    ("tool", "what are your opening hours", "Greeter",
     ("what are your opening hours", "result:get_hours")),
    ("handoff", "I would like to book a table", "BookingAgent",
     ("I would like to book a table", "result:transfer_to_booking", "enter:booking")),
    ("tool", "is friday evening available", "BookingAgent",
     ("is friday evening available", "result:check_availability")),
    ("task_start", "please take my contact details", "ContactTask",
     ("please take my contact details", "enter:contact")),
    ("task_complete", "my email is jane@example.com", "BookingAgent",
     ("my email is jane@example.com", "result:collect_contact")),
    ("group_start", "add the party details", "NameTask",
     ("add the party details", "enter:name")),
    ("group_step", "the name is Jane Doe", "PartySizeTask",
     ("the name is Jane Doe", "enter:party")),
    ("group_complete", "four people", "BookingAgent",
     ("four people", "summary", "result:collect_party_details")),
    ("plain", "thanks that is all", "BookingAgent", ("thanks that is all",)),
    ("handoff", "take me back to the front desk", "Greeter",
     ("take me back to the front desk", "result:back_to_greeter", "enter:greeter")),
]
# LLM requests per turn in the reference's --verify table (python-anchor README).
REFERENCE_REQUESTS = [1, 2, 3, 2, 2, 2, 2, 2, 3, 1, 3]
KINDS = ["plain", "tool", "handoff", "task_start", "task_complete",
         "group_start", "group_step", "group_complete"]
HEADLINE_KINDS = ("plain", "tool", "handoff")
GREETING_LABEL = "enter:greeter"


# ======================================================================================
# Framework import (timed for the cold mode)
# ======================================================================================

T_IMPORT0 = time.perf_counter()
from livekit.agents import Agent, AgentSession, AgentTask, RunContext, function_tool  # noqa: E402
from livekit.agents import __version__ as LIVEKIT_AGENTS_VERSION  # noqa: E402
from livekit.agents import llm as lkllm  # noqa: E402
from livekit.agents.beta.workflows import TaskGroup  # noqa: E402
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN  # noqa: E402
from livekit.agents.voice.agent_activity import ActivityClosedError  # noqa: E402

T_IMPORT1 = time.perf_counter()


# ======================================================================================
# Scripted fake LLM
# ======================================================================================


def request_label(chat_ctx: lkllm.ChatContext) -> str:
    """Name a request after what it answers: the newest chat item."""
    items = chat_ctx.items
    if not items:
        return "<empty>"
    newest = items[-1]
    if newest.type == "function_call_output":
        return "result:" + newest.name
    if newest.type == "message":
        text = newest.text_content or ""
        if newest.role == "user" and text.startswith("Conversation to summarize"):
            return "summary"  # ChatContext._summarize(), used by TaskGroup
        return text
    return "<" + newest.type + ">"


class InstantLLM(lkllm.LLM):
    """Answers every request from SCRIPT without awaiting anything."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: list[str] = []
        self.unknown: list[str] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def model(self) -> str:
        return "instant-script"

    @property
    def provider(self) -> str:
        return "switchboard-bench"

    def chat(self, *, chat_ctx: lkllm.ChatContext, tools: list | None = None,
             conn_options: Any = DEFAULT_API_CONNECT_OPTIONS, parallel_tool_calls: Any = NOT_GIVEN,
             tool_choice: Any = NOT_GIVEN, extra_kwargs: Any = NOT_GIVEN) -> lkllm.LLMStream:
        return InstantStream(self, chat_ctx=chat_ctx, tools=tools or [],
                             conn_options=conn_options)

    def served(self, n: int) -> asyncio.Future[None]:
        """A future that resolves once ``n`` requests in total have been answered."""
        fut = asyncio.get_running_loop().create_future()
        if len(self.labels) >= n:
            fut.set_result(None)
        else:
            self._waiters.append((n, fut))
        return fut

    def _answered(self) -> None:
        n = len(self.labels)
        keep = []
        for want, fut in self._waiters:
            if want <= n:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((want, fut))
        self._waiters = keep


class InstantStream(lkllm.LLMStream):
    async def _run(self) -> None:
        model: InstantLLM = self._llm  # type: ignore[assignment]
        label = request_label(self.chat_ctx)
        model.labels.append(label)
        seq = len(model.labels)
        rid = f"bench-{id(model):x}-{seq}"
        answer = SCRIPT.get(label)
        if answer is None:
            model.unknown.append(label)
            answer = "I did not catch that."
        out_tokens = 0
        if isinstance(answer, str):
            words = answer.split(" ")
            for i, w in enumerate(words):
                piece = w if i == len(words) - 1 else w + " "
                self._event_ch.send_nowait(
                    lkllm.ChatChunk(id=rid, delta=lkllm.ChoiceDelta(role="assistant", content=piece)))
            out_tokens = len(words)
        else:
            _, name, args = answer
            call = lkllm.FunctionToolCall(name=name, arguments=json.dumps(args),
                                          call_id=f"call-{seq}")
            self._event_ch.send_nowait(
                lkllm.ChatChunk(id=rid, delta=lkllm.ChoiceDelta(role="assistant", tool_calls=[call])))
            out_tokens = 10
        prompt_tokens = 16 * len(self.chat_ctx.items)
        self._event_ch.send_nowait(lkllm.ChatChunk(id=rid, usage=lkllm.CompletionUsage(
            completion_tokens=out_tokens, prompt_tokens=prompt_tokens,
            total_tokens=out_tokens + prompt_tokens)))
        model._answered()


# ======================================================================================
# Agents, tasks and tools of the booking workflow
# ======================================================================================


@dataclass
class Booking:
    day: str | None = None
    email: str | None = None
    name: str | None = None
    guests: int | None = None
    transfers: int = 0


@dataclass
class Contact:
    email: str


class Greeter(Agent):
    def __init__(self, chat_ctx: Any = NOT_GIVEN) -> None:
        super().__init__(instructions="Front desk of Bistro Rust: greet, give opening hours, "
                                      "and transfer callers who want a table.",
                         chat_ctx=chat_ctx)

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="enter:greeter")

    @function_tool
    async def get_hours(self, ctx: RunContext[Booking]) -> str:
        """Return the opening hours."""
        return "Tue-Sun 12:00-23:00"

    @function_tool
    async def transfer_to_booking(self, ctx: RunContext[Booking]) -> Any:
        """Hand the caller over to reservations."""
        ctx.userdata.transfers += 1
        return BookingAgent(chat_ctx=self.chat_ctx), "Handing over to reservations."


class BookingAgent(Agent):
    def __init__(self, chat_ctx: Any = NOT_GIVEN) -> None:
        super().__init__(instructions="Reservations desk of Bistro Rust: check a day, collect "
                                      "contact and party details, confirm.",
                         chat_ctx=chat_ctx)

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="enter:booking")

    @function_tool
    async def check_availability(self, ctx: RunContext[Booking], day: str) -> str:
        """Tell which slots are free on a day.

        Args:
            day: weekday name in lower case
        """
        ctx.userdata.day = day
        return f"free on {day}: 19:00, 20:30"

    @function_tool
    async def collect_contact(self, ctx: RunContext[Booking]) -> str:
        """Ask for and store the caller's email."""
        contact: Contact = await ContactTask(chat_ctx=self.chat_ctx)
        ctx.userdata.email = contact.email
        return f"email stored: {contact.email}"

    @function_tool
    async def collect_party_details(self, ctx: RunContext[Booking]) -> str:
        """Ask for the booking name, then the number of guests."""
        group = TaskGroup(chat_ctx=self.chat_ctx)
        group.add(NameTask, id="name", description="name for the booking")
        group.add(PartySizeTask, id="guests", description="number of guests")
        done = await group
        ctx.userdata.name = done.task_results["name"]
        ctx.userdata.guests = done.task_results["guests"]
        return f"{ctx.userdata.name}, {ctx.userdata.guests} guests"

    @function_tool
    async def back_to_greeter(self, ctx: RunContext[Booking]) -> Any:
        """Hand the caller back to the front desk."""
        ctx.userdata.transfers += 1
        return Greeter(chat_ctx=self.chat_ctx), "Handing back to the front desk."


class ContactTask(AgentTask[Contact]):
    def __init__(self, chat_ctx: Any = NOT_GIVEN) -> None:
        super().__init__(instructions="Get the caller's email address.", chat_ctx=chat_ctx)

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="enter:contact")

    @function_tool
    async def record_email(self, ctx: RunContext[Booking], email: str) -> None:
        """Store the email address.

        Args:
            email: the caller's email address
        """
        self.complete(Contact(email=email))


class NameTask(AgentTask[str]):
    def __init__(self) -> None:
        super().__init__(instructions="Get the name the table is booked under.")

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="enter:name")

    @function_tool
    async def record_name(self, ctx: RunContext[Booking], name: str) -> None:
        """Store the booking name.

        Args:
            name: the name for the booking
        """
        self.complete(name)


class PartySizeTask(AgentTask[int]):
    def __init__(self) -> None:
        super().__init__(instructions="Get the number of guests.")

    async def on_enter(self) -> None:
        self.session.generate_reply(instructions="enter:party")

    @function_tool
    async def record_party_size(self, ctx: RunContext[Booking], size: int) -> None:
        """Store the number of guests.

        Args:
            size: how many guests
        """
        self.complete(size)


# ======================================================================================
# Session driving
# ======================================================================================


class Conversation:
    """One lean text-mode session plus its fake LLM."""

    __slots__ = ("session", "model")

    def __init__(self) -> None:
        self.model = InstantLLM()
        self.session = AgentSession[Booking](
            llm=self.model, vad=None, turn_handling={"turn_detection": None},
            userdata=Booking())

    async def start(self) -> None:
        """start() including the Greeter's on_enter greeting (one LLM request)."""
        await self.session.start(Greeter(), capture_run=True)
        await self._settled(1)

    async def turn(self, text: str, requests: int) -> None:
        """One user turn, returning once it is settled: the turn's last LLM request has
        been answered and the session is idle again. (In 1.8.9 ``run()`` resolves early
        on the TaskGroup-completion turn, so run() alone is not enough.)"""
        target = len(self.model.labels) + requests
        await self.session.run(user_input=text)
        await self._settled(target)

    async def _settled(self, target: int) -> None:
        await self.model.served(target)
        while True:
            try:
                await self.session.wait_for_idle()
                return
            except ActivityClosedError:
                # the TaskGroup activity is still closing; the session moves on shortly
                await asyncio.sleep(0)

    async def turns(self, cycle: list | None = None) -> None:
        for _kind, text, _agent, labels in cycle or CYCLE:
            await self.turn(text, len(labels))

    async def close(self) -> None:
        await self.session.aclose()

    def agent_name(self) -> str:
        return type(self.session.current_agent).__name__


def quiet_logging() -> None:
    # keep log formatting and I/O out of the measurement
    for name in ("livekit", "livekit.agents", "livekit.plugins", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)


async def warm_up(freeze: bool = True) -> None:
    """One discarded session through a full cycle, so lazily-built framework state exists;
    then ``gc.collect(); gc.freeze()`` as the production worker's forkserver does
    (livekit.agents.ipc._preload_freeze), so gen-2 collections skip import-time objects."""
    conv = Conversation()
    await conv.start()
    await conv.turns()
    await conv.close()
    del conv
    gc.collect()
    if freeze:
        gc.freeze()


def pctl(xs: list[float], p: float) -> float:
    """Percentile with linear interpolation between closest ranks (numpy's default)."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def us_stats(seconds: list[float]) -> dict[str, float]:
    us = [x * 1e6 for x in seconds]
    return {"n": len(us), "p50": round(pctl(us, 50), 1), "p90": round(pctl(us, 90), 1),
            "p99": round(pctl(us, 99), 1), "mean": round(statistics.fmean(us), 1),
            "min": round(min(us), 1), "max": round(max(us), 1)}


def rss_kib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1024.0


def status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class GcWatch:
    """Wall time spent in cyclic-GC passes, via gc.callbacks."""

    def __init__(self) -> None:
        self.total = 0.0
        self.longest = 0.0
        self.passes = [0, 0, 0]
        self._t = 0.0
        self._t_open = 0.0

    def _hook(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t = time.perf_counter()
        else:
            d = time.perf_counter() - self._t
            self.total += d
            self.longest = max(self.longest, d)
            self.passes[info["generation"]] += 1

    def __enter__(self) -> GcWatch:
        self._t_open = time.perf_counter()
        gc.callbacks.append(self._hook)
        return self

    def __exit__(self, *_: Any) -> None:
        gc.callbacks.remove(self._hook)
        self.wall = time.perf_counter() - self._t_open

    def summary(self) -> dict[str, Any]:
        return {"passes_gen0_gen1_gen2": self.passes, "pause_total_s": round(self.total, 3),
                "pause_longest_ms": round(self.longest * 1e3, 2),
                "share_of_wall": round(self.total / self.wall, 4) if self.wall else None}


# ======================================================================================
# Child-process measurements
# ======================================================================================


async def child_verify(opt: argparse.Namespace) -> dict:
    conv = Conversation()
    await conv.start()
    rows, problems = [], []
    if conv.model.labels != [GREETING_LABEL]:
        problems.append(f"start: LLM requests {conv.model.labels} != [{GREETING_LABEL!r}]")
    for cycle in range(2):
        for i, (kind, text, agent, labels) in enumerate(CYCLE):
            before = len(conv.model.labels)
            t0 = time.perf_counter()
            await conv.turn(text, len(labels))
            dt = time.perf_counter() - t0
            # let anything the turn might still schedule surface before counting
            for _ in range(20):
                await asyncio.sleep(0)
            got = conv.model.labels[before:]
            now = conv.agent_name()
            ok = (len(got) == REFERENCE_REQUESTS[i] and tuple(got) == labels and now == agent)
            if not ok:
                problems.append(f"cycle {cycle + 1} turn {i + 1} ({kind}): agent {now} "
                                f"(want {agent}), requests {got} (want {list(labels)})")
            rows.append({"cycle": cycle + 1, "turn": i + 1, "kind": kind, "user": text,
                         "agent_after": now, "agent_expected": agent,
                         "llm_requests": len(got), "llm_requests_expected": REFERENCE_REQUESTS[i],
                         "request_labels": got, "ok": ok, "settled_us": round(dt * 1e6, 1),
                         "history_items": len(conv.session.history.items)})
    if conv.model.unknown:
        problems.append(f"unscripted requests: {sorted(set(conv.model.unknown))}")
    data = vars(conv.session.userdata)
    want = {"day": "friday", "email": "jane@example.com", "name": "Jane Doe", "guests": 4,
            "transfers": 4}
    if data != want:
        problems.append(f"userdata after two cycles {data} != {want}")
    await conv.close()
    return {"ok": not problems, "problems": problems, "turns": rows, "userdata": data}


async def child_latency(opt: argparse.Namespace) -> dict:
    settled: dict[str, list[float]] = {k: [] for k in KINDS}
    run_only: dict[str, list[float]] = {k: [] for k in KINDS}
    cpu: dict[str, list[float]] = {k: [] for k in KINDS}
    await warm_up(opt.gc_freeze)
    sessions = 0
    with GcWatch() as gcw:
        while min(len(settled[k]) for k in HEADLINE_KINDS) < opt.samples:
            conv = Conversation()
            await conv.start()
            for _ in range(opt.cycles_per_session):
                for kind, text, _agent, labels in CYCLE:
                    target = len(conv.model.labels) + len(labels)
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                    await conv.session.run(user_input=text)
                    t1 = time.perf_counter()
                    await conv._settled(target)
                    t2 = time.perf_counter()
                    cpu[kind].append(time.process_time() - c0)
                    run_only[kind].append(t1 - t0)
                    settled[kind].append(t2 - t0)
            await conv.close()
            sessions += 1
    return {
        "turn_us": {k: {"p50": round(pctl(settled[k], 50) * 1e6, 1),
                        "p99": round(pctl(settled[k], 99) * 1e6, 1)} for k in HEADLINE_KINDS},
        "detail": {
            "sessions": sessions, "cycles_per_session": opt.cycles_per_session,
            "settled_us": {k: us_stats(v) for k, v in settled.items()},
            "run_returned_us": {k: us_stats(v) for k, v in run_only.items()},
            "cpu_us": {k: us_stats(v) for k, v in cpu.items()},
            "llm_requests_per_turn": {kind: len(labels) for kind, _t, _a, labels in CYCLE},
            "gc": gcw.summary(),
        },
    }


async def child_session(opt: argparse.Namespace) -> dict:
    await warm_up(opt.gc_freeze)
    construct, start, close, close_after_cycle = [], [], [], []
    with GcWatch() as gcw:
        for _ in range(opt.samples):
            t0 = time.perf_counter()
            conv = Conversation()
            t1 = time.perf_counter()
            await conv.start()
            t2 = time.perf_counter()
            await conv.close()
            t3 = time.perf_counter()
            construct.append(t1 - t0)
            start.append(t2 - t0)
            close.append(t3 - t2)
        # close cost of a session that has a conversation behind it (detail only)
        for _ in range(max(1, opt.samples // 5)):
            conv = Conversation()
            await conv.start()
            await conv.turns()
            t0 = time.perf_counter()
            await conv.close()
            close_after_cycle.append(time.perf_counter() - t0)
    s, c = us_stats(start), us_stats(close)
    return {
        "session_start_us": s["p50"],
        "session_close_us": c["p50"],
        "detail": {"start_incl_greeting_us": s, "construct_us": us_stats(construct),
                   "close_idle_us": c, "close_after_one_cycle_us": us_stats(close_after_cycle),
                   "gc": gcw.summary()},
    }


async def child_memory(opt: argparse.Namespace) -> dict:
    n = opt.n
    await warm_up(opt.gc_freeze)
    await asyncio.sleep(0.05)
    gc.collect()
    base = rss_kib()
    tasks0 = len(asyncio.all_tasks())
    convs = []
    for _ in range(n):
        conv = Conversation()
        await conv.start()
        convs.append(conv)
    gc.collect()
    idle = rss_kib()
    tasks_idle = len(asyncio.all_tasks())
    first = CYCLE[: opt.turns]
    for i in range(0, n, 100):  # drive at most 100 sessions at a time
        await asyncio.gather(*(c.turns(first) for c in convs[i:i + 100]))
    gc.collect()
    after = rss_kib()
    tasks_after = len(asyncio.all_tasks())
    parked_in = sorted({c.agent_name() for c in convs})
    t0 = time.perf_counter()
    for i in range(0, n, 100):
        await asyncio.gather(*(c.close() for c in convs[i:i + 100]))
    close_s = time.perf_counter() - t0
    return {
        "sessions": n,
        "idle_kib": round((idle - base) / n, 1),
        "after_turns_kib": round((after - base) / n, 1),
        "baseline_rss_kib": round(base),
        "rss_idle_kib": round(idle),
        "rss_after_turns_kib": round(after),
        "turns_per_session": len(first),
        "agent_after_turns": parked_in,
        "asyncio_tasks_per_session_idle": round((tasks_idle - tasks0) / n, 2),
        "asyncio_tasks_per_session_after_turns": round((tasks_after - tasks0) / n, 2),
        "close_all_s": round(close_s, 3),
        "vm_hwm_kib": status_kib("VmHWM"),
    }


async def child_throughput(opt: argparse.Namespace) -> dict:
    n = opt.n
    per_session = len(CYCLE)
    rounds = max(1, -(-opt.min_turns // (n * per_session)))
    await warm_up(opt.gc_freeze)
    busy = cpu = open_s = close_s = 0.0
    turns = 0
    with GcWatch() as gcw:
        for _ in range(rounds):
            t0 = time.perf_counter()
            convs = [Conversation() for _ in range(n)]
            await asyncio.gather(*(c.start() for c in convs))
            t1 = time.perf_counter()
            c1 = time.process_time()
            await asyncio.gather(*(c.turns() for c in convs))
            t2 = time.perf_counter()
            cpu += time.process_time() - c1
            await asyncio.gather(*(c.close() for c in convs))
            t3 = time.perf_counter()
            open_s += t1 - t0
            busy += t2 - t1
            close_s += t3 - t2
            turns += n * per_session
            del convs
    return {
        "sessions": n, "rounds": rounds, "turns": turns,
        "turns_per_s": round(turns / busy, 1),
        "turn_phase_s": round(busy, 3),
        "cpu_us_per_turn": round(cpu / turns * 1e6, 1),
        "turns_per_cpu_s": round(turns / cpu, 1) if cpu else None,
        "sessions_opened_per_s": round(n * rounds / open_s, 1),
        "sessions_closed_per_s": round(n * rounds / close_s, 1),
        "vm_hwm_kib": status_kib("VmHWM"),
        "gc": gcw.summary(),
    }


async def child_cold(opt: argparse.Namespace) -> dict:
    t_main = time.perf_counter()
    conv = Conversation()
    await conv.start()
    t_started = time.perf_counter()
    _kind, text, _agent, labels = CYCLE[0]
    await conv.turn(text, len(labels))
    t_turn = time.perf_counter()
    cpu = time.process_time()
    # the parent stops its clock when it reads this line
    sys.stdout.write(COLD_MARK + "\n")
    sys.stdout.flush()
    await conv.close()
    return {
        "in_process_ms": {
            "interpreter_to_script": None,  # filled by the parent (exec -> T_EXEC unknown here)
            "import_livekit_agents": round((T_IMPORT1 - T_IMPORT0) * 1e3, 2),
            "script_to_imported": round((T_IMPORT1 - T_EXEC) * 1e3, 2),
            "first_start_incl_greeting": round((t_started - t_main) * 1e3, 2),
            "first_turn": round((t_turn - t_started) * 1e3, 2),
            "script_to_first_turn": round((t_turn - T_EXEC) * 1e3, 2),
        },
        "cpu_s_until_first_turn": round(cpu, 3),
        "rss_kib_after_first_turn": round(rss_kib()),
    }


CHILDREN = {"verify": child_verify, "latency": child_latency, "session": child_session,
            "memory": child_memory, "throughput": child_throughput, "cold": child_cold}


# ======================================================================================
# Parent: one fresh child process per measurement
# ======================================================================================


def busy_jiffies() -> int:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # minus idle and iowait


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def child_cmd(mode: str, opt: argparse.Namespace, extra: list[str]) -> list[str]:
    cmd = [sys.executable, HERE, mode, "--child", "--samples", str(opt.samples),
           "--cycles-per-session", str(opt.cycles_per_session), "--turns", str(opt.turns),
           "--min-turns", str(opt.min_turns)] + extra
    if not opt.gc_freeze:
        cmd.append("--no-gc-freeze")
    return cmd


class Load:
    """CPU used by *other* processes (in cores) while a child ran, plus load averages."""

    def __enter__(self) -> Load:
        self.loadavg_before = loadavg()
        self._j = busy_jiffies()
        self._c = children_cpu_s()
        self._t = time.perf_counter()
        return self

    def __exit__(self, *_: Any) -> None:
        wall = time.perf_counter() - self._t
        all_cpu = (busy_jiffies() - self._j) / os.sysconf("SC_CLK_TCK")
        own = children_cpu_s() - self._c
        self.wall_s = round(wall, 3)
        self.foreign_cores = round(max(0.0, (all_cpu - own) / wall), 2) if wall > 0 else None
        self.loadavg_after = loadavg()

    def info(self) -> dict[str, Any]:
        return {"child_wall_s": self.wall_s, "foreign_busy_cores": self.foreign_cores,
                "loadavg_before": self.loadavg_before, "loadavg_after": self.loadavg_after}


def run_child(mode: str, opt: argparse.Namespace, extra: list[str] | None = None,
              check: bool = True) -> dict:
    with Load() as load:
        r = subprocess.run(child_cmd(mode, opt, extra or []), capture_output=True, text=True)
    if r.returncode != 0 and check:
        sys.stderr.write(r.stderr[-4000:])
        raise SystemExit(f"[py-bench] {mode} child {extra or ''} exited with {r.returncode}")
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["load"] = load.info()
    return out


def run_cold_child(opt: argparse.Namespace) -> dict:
    """Time exec -> first completed turn from outside, around a fresh interpreter."""
    with Load() as load:
        t0 = time.perf_counter()
        p = subprocess.Popen(child_cmd("cold", opt, []), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        assert p.stdout is not None
        t_mark = None
        lines = []
        for line in p.stdout:
            if t_mark is None and line.strip() == COLD_MARK:
                t_mark = time.perf_counter()
            else:
                lines.append(line)
        err = p.stderr.read() if p.stderr else ""
        rc = p.wait()
        t_exit = time.perf_counter()
    if rc != 0 or t_mark is None:
        sys.stderr.write(err[-4000:])
        raise SystemExit(f"[py-bench] cold child failed (exit {rc})")
    out = json.loads(lines[-1])
    out["exec_to_first_turn_ms"] = round((t_mark - t0) * 1e3, 2)
    out["exec_to_exit_ms"] = round((t_exit - t0) * 1e3, 2)
    ip = out["in_process_ms"]
    ip["interpreter_to_script"] = round(out["exec_to_first_turn_ms"] - ip["script_to_first_turn"], 2)
    out["load"] = load.info()
    return out


def counts(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def pick(rows: dict[str, dict], want: int = 1000) -> str:
    """The session count that the headline memory figure is taken from."""
    if str(want) in rows:
        return str(want)
    return max(rows, key=int)


def parent(opt: argparse.Namespace) -> dict:
    mode = opt.mode
    if mode == "verify":
        return run_child("verify", opt, check=False)
    if mode in ("latency", "session"):
        log(f"{mode}: {opt.samples} samples")
        res = run_child(mode, opt)
        res["detail"]["load"] = res.pop("load")
        return res
    if mode == "memory":
        by_n: dict[str, dict] = {}
        for n in counts(opt.sessions):
            log(f"memory: {n} sessions")
            by_n[str(n)] = run_child("memory", opt, ["--n", str(n)])
        at = pick(by_n)
        return {"memory_kib_per_session": {"idle": by_n[at]["idle_kib"],
                                           "after_turns": by_n[at]["after_turns_kib"]},
                "detail": {"headline_sessions": int(at),
                           "by_sessions": {n: {"idle": r["idle_kib"],
                                               "after_turns": r["after_turns_kib"]}
                                           for n, r in by_n.items()},
                           "runs": by_n}}
    if mode == "throughput":
        runs: dict[str, dict] = {}
        for n in counts(opt.sessions):
            log(f"throughput: {n} concurrent sessions")
            runs[str(n)] = run_child("throughput", opt, ["--n", str(n)])
        return {"turns_per_s": {n: r["turns_per_s"] for n, r in runs.items()},
                "detail": {"runs": runs}}
    if mode == "cold":
        runs_l = []
        for i in range(opt.runs):
            log(f"cold: run {i + 1}/{opt.runs}")
            runs_l.append(run_cold_child(opt))
        first = [r["exec_to_first_turn_ms"] for r in runs_l]
        return {"cold_start_ms": round(statistics.median(first), 1),
                "detail": {"exec_to_first_turn_ms": first,
                           "exec_to_exit_ms_median": round(statistics.median(
                               r["exec_to_exit_ms"] for r in runs_l), 1),
                           "runs": runs_l}}
    raise SystemExit(f"unknown mode {mode}")


def machine() -> dict[str, Any]:
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpu": cpu,
            "cpus": len(os.sched_getaffinity(0)), "kernel": platform.release(),
            "python": platform.python_version(), "livekit_agents": LIVEKIT_AGENTS_VERSION,
            "session": "AgentSession(llm=fake, vad=None, turn_handling={'turn_detection': None})",
            "event_loop": "asyncio default"}


def print_verify(res: dict, stream: Any) -> None:
    print(f"{'turn':<5} {'kind':<15} {'user says':<32} {'agent after':<14} {'LLM req':>7} "
          f"{'want':>4} {'history':>7}  ok", file=stream)
    for r in res["turns"]:
        print(f"{r['cycle']}.{r['turn']:<3} {r['kind']:<15} {r['user']:<32} "
              f"{r['agent_after']:<14} {r['llm_requests']:>7} {r['llm_requests_expected']:>4} "
              f"{r['history_items']:>7}  {'yes' if r['ok'] else 'NO'}", file=stream)
    verdict = "verify: OK, matches the reference table" if res["ok"] else "verify: MISMATCH"
    print(verdict, file=stream)
    for p in res["problems"]:
        print("  " + p, file=stream)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=sorted(CHILDREN))
    ap.add_argument("--json", action="store_true",
                    help="verify: JSON on stdout, table on stderr (other modes always print JSON)")
    ap.add_argument("--samples", type=int, default=500,
                    help="latency: min samples of each of plain/tool/handoff; "
                         "session: sessions opened and closed (default 500)")
    ap.add_argument("--sessions", default="1,10,100,1000",
                    help="memory/throughput: comma list of concurrent session counts")
    ap.add_argument("--turns", type=int, default=5,
                    help="memory: turns driven on every open session before the 2nd reading")
    ap.add_argument("--min-turns", type=int, default=2000,
                    help="throughput: repeat open/cycle/close rounds until this many turns")
    ap.add_argument("--runs", type=int, default=5, help="cold: fresh processes (median)")
    ap.add_argument("--cycles-per-session", type=int, default=2,
                    help="latency: cycles driven on each session before it is closed")
    ap.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                    help="skip gc.freeze() after the warm-up")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, default=1, help=argparse.SUPPRESS)
    opt = ap.parse_args()
    quiet_logging()

    if opt.child:
        res = asyncio.run(CHILDREN[opt.mode](opt))
        print(json.dumps(res), flush=True)
        if opt.mode == "verify" and not res["ok"]:
            sys.exit(1)
        return

    res = parent(opt)
    res.setdefault("detail", {})["machine"] = machine()
    if opt.mode == "verify":
        print_verify(res, sys.stderr if opt.json else sys.stdout)
        if opt.json:
            print(json.dumps(res))
        sys.exit(0 if res["ok"] else 1)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
