"""`wanedit doctor --live`: the least money that answers what the provider's documentation
leaves open. One `n=1` edit per account, end to end, and on one account the concurrency probe
(C+2 tasks of `n=1`). A create is never sent twice: an answer lost is reported, not retried.
"""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, replace
from typing import Any

import requests
from PIL import Image

from wanedit import limits
from wanedit.accounts import Account
from wanedit.config.settings import Settings
from wanedit.doctor.probe import ProbeTask, analyse, summary
from wanedit.doctor.report import Check, fail, iso, ok, warn
from wanedit.errors import OutcomeUnknown, ProviderError
from wanedit.provider_time import provider_moment
from wanedit.request import EditRequest
from wanedit.results import presign
from wanedit.store.admission import Admission
from wanedit.workers.client import LIST_PAGES_MAX, ProviderClient
from wanedit.workers.provider import ENDED_STATUSES, ListedTask, TaskState, task_seconds
from wanedit.workers.zone import AccountZones

PROMPT = "Add a small red circle in the top left corner"
INPUT_SIDE = 512
POLL_SECONDS = 1.0
# Creates go a little slower than the account's submit rate allows: bursts trip it.
SUBMIT_MARGIN = 1.1

Echo = Callable[[str], None]


@dataclass(frozen=True)
class LivePlan:
    """Who gets what: one edit per account; the probe account's C+2 probe tasks include its
    edit (the first one to succeed is downloaded)."""

    accounts: tuple[Account, ...]
    probe: Account

    def images(self, account: Account) -> int:
        return account.concurrency + 2 if account.name == self.probe.name else 1

    def cost(self) -> dict[str, float]:
        """The most it costs, by currency (only successful images are billed)."""
        totals: dict[str, float] = {}
        for account in self.accounts:
            amount = self.images(account) * account.price
            totals[account.currency] = round(totals.get(account.currency, 0.0) + amount, 6)
        return totals

    def describe(self) -> list[str]:
        lines = []
        for account in self.accounts:
            what = (
                f"the concurrency probe: {self.images(account)} tasks (C={account.concurrency}, "
                "+2), one of them downloaded"
                if account.name == self.probe.name
                else "one edit, downloaded"
            )
            lines.append(
                f"  {account.name}: {what}; {self.images(account)} images x "
                f"{account.price:g} {account.currency} = "
                f"{self.images(account) * account.price:.4f} {account.currency}"
            )
        total = ", ".join(f"{amount:.4f} {currency}" for currency, amount in self.cost().items())
        lines.append(f"  at most {total} (only successful images are billed)")
        return lines


def plan_for(accounts: list[Account], probe_account: str | None) -> LivePlan:
    """ValueError naming the option when the probe account is not configured."""
    names = [account.name for account in accounts]
    if probe_account is not None and probe_account not in names:
        raise ValueError(f"--probe-account: {probe_account!r} is not one of {', '.join(names)}")
    probe = next(a for a in accounts if probe_account in (None, a.name))
    return LivePlan(tuple(accounts), probe)


def input_png() -> bytes:
    """A small RGB PNG (no alpha) within the provider's input limits."""
    image = Image.new("RGB", (INPUT_SIDE, INPUT_SIDE), (70, 130, 180))
    for x in range(0, INPUT_SIDE, 64):
        for y in range(0, INPUT_SIDE, 64):
            if (x + y) // 64 % 2 == 0:
                image.paste((240, 220, 130), (x, y, x + 64, y + 64))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@dataclass
class Live:
    """What the live mode needs; `run` does it."""

    settings: Settings
    zones: AccountZones
    admission: Admission
    clients: dict[str, ProviderClient]
    downloads: requests.Session
    echo: Echo
    timeout: float = 900.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    poll_seconds: float = POLL_SECONDS

    def __post_init__(self) -> None:
        # Set on Ctrl-C: the edits stop waiting, the probe cancels its PENDING tasks.
        self.stopping = threading.Event()

    def run(self, plan: LivePlan, image_url: str) -> tuple[list[Check], dict[str, Any]]:
        deadline = self.clock() + self.timeout
        with ThreadPoolExecutor(max_workers=len(plan.accounts)) as pool:
            futures = {
                account.name: pool.submit(
                    self._probe if account.name == plan.probe.name else self._edit,
                    account,
                    image_url,
                    deadline,
                )
                for account in plan.accounts
            }
            try:
                done = {name: future.result() for name, future in futures.items()}
            except KeyboardInterrupt:
                self.stopping.set()
                wait(list(futures.values()))
                raise
        checks = [check for name in done for check in done[name][0]]
        return checks, {name: section for name, (_, section) in done.items()}

    def _create(self, account: Account, image_url: str) -> tuple[float, str]:
        # The request model builds the body as the workers send it (n always sent); the image
        # goes to the provider as given.
        request = EditRequest(prompt=PROMPT, images=["https://example.invalid/in.png"], n=1)
        payload = request.provider_input([image_url])
        sent = self.clock()
        task_id, _ = self.clients[account.name].create(self.settings.model, payload)
        return sent, task_id

    def _pace(self, account: Account) -> None:
        wait = self.admission.reserve_query(account)
        if wait > 0:
            self.sleep(wait)

    def _edit(
        self, account: Account, image_url: str, deadline: float
    ) -> tuple[list[Check], dict[str, Any]]:
        name = f"live edit [{account.name}]"
        self.echo(f"live [{account.name}]: one n=1 edit")
        try:
            sent, task_id = self._create(account, image_url)
        except OutcomeUnknown as exc:
            return [_lost(name, exc)], {"edit": {"error": exc.as_dict()}}
        except ProviderError as exc:
            return [fail(name, f"create refused: {exc}", _fix_for(exc.code))], {
                "edit": {"error": exc.as_dict()}
            }
        state = self._wait(account, task_id, deadline)
        return self._finish(account, name, task_id, sent, state)

    def _wait(self, account: Account, task_id: str, deadline: float) -> TaskState | None:
        client = self.clients[account.name]
        while True:
            self._pace(account)
            try:
                state = client.get(task_id)
            except ProviderError as exc:
                self.echo(f"live [{account.name}]: query of {task_id} failed ({exc}); again")
                state = None
            if state is not None and state.status in ENDED_STATUSES:
                return state
            if self.clock() >= deadline or self.stopping.is_set():
                return state
            self.sleep(self.poll_seconds)

    def _finish(
        self, account: Account, name: str, task_id: str, sent: float, state: TaskState | None
    ) -> tuple[list[Check], dict[str, Any]]:
        edit: dict[str, Any] = {"task_id": task_id, "sent_at": iso(sent)}
        if state is None or state.status not in ENDED_STATUSES:
            edit["status"] = state.status if state else None
            why = f"task {task_id} had not ended after {self.timeout:g} s"
            return [fail(name, why, "it ends and bills on its own; run again later")], {
                "edit": edit
            }
        submitted = state.times.get("submit_time")
        zone = self.zones.learn(account.name, submitted, sent, "doctor --live")
        edit.update(
            status=state.status,
            code=state.code,
            message=state.message,
            provider_times=state.times,
            zone_measured=zone,
            zone_from=f"submit_time {submitted!r} against the create sent at {iso(sent)}",
            submit_seconds_after_send=_after(submitted, zone, sent),
            task_seconds=_rounded(task_seconds(state.times)),
            image_count=state.image_count,
            cost=round((state.image_count or 0) * account.price, 6),
            currency=account.currency,
        )
        if state.status != "SUCCEEDED":
            detail = (
                f"task {task_id} ended {state.status} {state.code or ''}: {state.message or ''}"
            )
            return [fail(name, detail.strip(), _fix_for(state.code))], {"edit": edit}
        url = next((item.url for item in state.results if item.url), None)
        download = self._download(url or "")
        edit["download"] = download
        if "error" in download:
            return [fail(name, f"result not downloaded: {download['error']}", "")], {"edit": edit}
        detail = (
            f"task {task_id}: {state.status} in {edit['task_seconds']} s, result "
            f"{download['width']}x{download['height']} PNG ({download['bytes']} bytes) downloaded"
        )
        return [ok(name, detail)], {"edit": edit}

    def _download(self, url: str) -> dict[str, Any]:
        if not url.startswith(("https://", "http://")):
            return {"error": "no result URL"}
        started = self.clock()
        try:
            with self.downloads.get(url, timeout=60, stream=True) as answer:
                if answer.status_code != 200:
                    return {"error": f"HTTP {answer.status_code}"}
                body = answer.raw.read(limits.RESULT_BYTES_MAX + 1, decode_content=True)
        except (requests.RequestException, OSError) as exc:
            return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
        if len(body) > limits.RESULT_BYTES_MAX:
            return {"error": f"over {limits.RESULT_BYTES_MAX} bytes"}
        try:
            with Image.open(io.BytesIO(body)) as image:
                width, height, kind = image.width, image.height, image.format
        except (OSError, ValueError) as exc:
            return {"error": f"not an image: {exc}"}
        seconds = round(self.clock() - started, 3)
        return {
            "bytes": len(body),
            "width": width,
            "height": height,
            "format": kind,
            "seconds": seconds,
        }

    def _probe(
        self, account: Account, image_url: str, deadline: float
    ) -> tuple[list[Check], dict[str, Any]]:
        count = account.concurrency + 2
        self.echo(
            f"live [{account.name}]: the concurrency probe, {count} tasks at "
            f"{account.submit_rate:g}/s"
        )
        tasks: list[ProbeTask] = []
        spacing = SUBMIT_MARGIN / account.submit_rate
        for index in range(count):
            if self.stopping.is_set():
                break
            if index:
                self.sleep(spacing)
            sent = self.clock()
            try:
                sent, task_id = self._create(account, image_url)
            except OutcomeUnknown as exc:
                # It may have made a task (and bill it): never sent again.
                tasks.append(ProbeTask(index, sent, refused=f"answer lost ({exc.code})"))
                continue
            except ProviderError as exc:
                tasks.append(ProbeTask(index, sent, refused=exc.code))
                continue
            tasks.append(ProbeTask(index, sent, task_id=task_id))
        tasks, others = self._watch(account, tasks, deadline)
        if self.stopping.is_set():
            self._cancel_pending(account, tasks)
        findings = analyse(tasks, account.concurrency)
        findings["other_tasks_running_max"] = others
        section: dict[str, Any] = {
            "probe": {
                **findings,
                "tasks": [
                    {
                        **asdict(t),
                        "sent_at": iso(t.sent_at),
                        "started": iso(t.started),
                        "ended": iso(t.ended),
                    }
                    for t in tasks
                ],
            }
        }
        name = f"concurrency probe [{account.name}]"
        waiting = [t.index for t in tasks if t.task_id and t.status not in ENDED_STATUSES]
        checks = []
        if waiting:
            checks.append(
                fail(
                    name,
                    f"tasks {waiting} had not ended after {self.timeout:g} s; " + summary(findings),
                    "they end and bill on their own; run again with a longer --live-timeout",
                )
            )
        elif findings["refused"] and not findings["accepted"]:
            checks.append(fail(name, "every create was refused: " + str(findings["refused"]), ""))
        else:
            checks.append(ok(name, summary(findings)))
            if others:
                checks.append(
                    warn(
                        name,
                        f"up to {others} other tasks of the account ran meanwhile: the waits "
                        "include theirs",
                        "run the probe while the account is otherwise idle for clean figures",
                    )
                )
        edit_checks, edit = self._probe_edit(account, tasks)
        section.update(edit)
        return checks + edit_checks, section

    def _probe_edit(
        self, account: Account, tasks: list[ProbeTask]
    ) -> tuple[list[Check], dict[str, Any]]:
        """The account's end-to-end edit: the first probe task that succeeded, queried and
        downloaded."""
        name = f"live edit [{account.name}]"
        first = next((t for t in tasks if t.task_id and t.status == "SUCCEEDED"), None)
        if first is None or first.task_id is None:
            return [fail(name, "no probe task succeeded", "see the probe's statuses")], {}
        self._pace(account)
        try:
            state = self.clients[account.name].get(first.task_id)
        except ProviderError as exc:
            return [fail(name, f"query of {first.task_id} failed: {exc}", "run again")], {}
        return self._finish(account, name, first.task_id, first.sent_at, state)

    def _watch(
        self, account: Account, tasks: list[ProbeTask], deadline: float
    ) -> tuple[list[ProbeTask], int]:
        """Read the task list until every accepted task has ended (or the deadline)."""
        ours = {t.task_id for t in tasks if t.task_id}
        first = True
        others = 0
        while ours:
            rows, running_others = self._read(account, ours)
            others = max(others, running_others)
            tasks = [_seen(t, rows.get(t.task_id or ""), first) for t in tasks]
            first = False
            if all(t.status in ENDED_STATUSES for t in tasks if t.task_id):
                break
            if self.clock() >= deadline or self.stopping.is_set():
                break
            self.sleep(self.poll_seconds)
        return tasks, others

    def _read(self, account: Account, ours: set[str]) -> tuple[dict[str, ListedTask], int]:
        """Our rows of the last 24 h (no time filter: no zone assumed), and how many rows of
        other tasks were running."""
        client = self.clients[account.name]
        found: dict[str, ListedTask] = {}
        others = 0
        page_no, total_page = 1, 1
        while page_no <= min(total_page, LIST_PAGES_MAX) and len(found) < len(ours):
            self._pace(account)
            try:
                page = client.list_recent(self.settings.model, page_no)
            except ProviderError as exc:
                self.echo(f"live [{account.name}]: list call failed ({exc}); again")
                return found, others
            for row in page.rows:
                if row.task_id in ours:
                    found[row.task_id] = row
                elif row.status == "RUNNING":
                    others += 1
            total_page = page.total_page
            page_no += 1
        return found, others

    def _cancel_pending(self, account: Account, tasks: list[ProbeTask]) -> None:
        for task in tasks:
            if task.task_id and task.status in (None, "PENDING"):
                try:
                    self.clients[account.name].cancel(task.task_id)
                    self.echo(f"live [{account.name}]: canceled PENDING task {task.task_id}")
                except ProviderError:
                    continue


def _row(task: ProbeTask) -> dict[str, Any]:
    times = {"sent_at": iso(task.sent_at), "started": iso(task.started), "ended": iso(task.ended)}
    return {**asdict(task), **times}


def _seen(task: ProbeTask, row: ListedTask | None, first: bool) -> ProbeTask:
    if row is None:
        return task
    return replace(
        task,
        status=row.status,
        first_status=row.status if first or task.first_status is None else task.first_status,
        started=row.started if row.started is not None else task.started,
        ended=row.ended if row.ended is not None else task.ended,
    )


def _after(submitted: str | None, zone: float | None, sent: float) -> float | None:
    if zone is None:
        return None
    moment = provider_moment(submitted, zone)
    return None if moment is None else round(moment - sent, 3)


def _lost(name: str, exc: OutcomeUnknown) -> Check:
    return fail(
        name,
        f"the create's answer was lost ({exc.code}); it may have made a task, which was not "
        "sent again",
        "look for it in the task list (`wanedit doctor` lists it within 24 h) before running "
        "--live again",
    )


def _fix_for(code: str | None) -> str:
    if code in ("InvalidURL", "InvalidParameter") or (code or "").startswith("InvalidParameter"):
        return (
            "the provider could not use the input image: the presigned URL must be public "
            "(pass --image with a public https URL of a PNG or JPEG of at least 384x384 px)"
        )
    return "see the code in docs/dashscope.md (error codes)"


def upload_input(s3: Any, settings: Settings, clock: Callable[[], float]) -> tuple[str, str]:
    """The input PNG put in the output bucket; its s3:// URI and a presigned GET URL."""
    stamp = f"{int(clock())}-{uuid.uuid4().hex[:8]}"
    target = settings.output_location.child("wanedit-doctor", f"input-{stamp}.png")
    s3.put_object(Bucket=target.bucket, Key=target.key, Body=input_png(), ContentType="image/png")
    return str(target), presign(s3, str(target), settings.presign_ttl_seconds)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
