"""``analyze`` on a Dask cluster: map inputs to events, shuffle by client, detect, merge.

See docs/scale.md for the design and its limits. The task functions are in
``tasks.py``; this module builds the graph, follows its progress and assembles the one
report. ``run_shares`` does the same work in this process, one task after another: it
is what the cluster's result is compared with, share for share.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dotaudit.cluster.tasks import (
    MappedCapture,
    analyze_input,
    detect_share,
    detection_of_analysis,
    finish_share,
    map_capture,
    map_summary,
    share_facts,
    share_of,
    summary_of_analysis,
)
from dotaudit.detect.base import Context
from dotaudit.detect.runner import Detection, merge_shared_facts
from dotaudit.errors import ClusterError, InputError
from dotaudit.model.report import ANOMALY_SAMPLES, AuditReport, merge_reports

TASK_RETRIES = 2
"""Retries of a task that raised (a worker that is lost is replaced by Dask itself)."""

LOCAL_PREFIX = "local:"


@dataclass(frozen=True)
class ClusterProgress:
    """What the scheduler reported so far."""

    files_done: int
    files: int
    packets: int
    shuffled_bytes: int
    events: int


ProgressSink = Callable[[ClusterProgress], None]


def timelines_of(urls: Sequence[str]) -> list[list[int]]:
    """Which inputs are read as one timeline: each input on its own, as ``analyze`` reads
    them locally."""
    return [[index] for index in range(len(urls))]


def _canonical_row(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(row.get("file", "")),
        str(row.get("client", "")),
        str(row.get("server", "")),
        json.dumps(row, sort_keys=True, default=str),
    )


def assemble_report(
    urls: Sequence[str],
    mapped: Sequence[MappedCapture],
    detections: Sequence[Sequence[Detection]],
    context: Context,
    generated_at: str,
) -> AuditReport:
    """One report from every timeline's shares. Within a timeline, findings and rows
    are put in one canonical order (the order of a local run follows the capture, which
    shares no longer share): findings as the report ranks them, rows by file, client,
    server and content."""
    policy = context.policy.to_dict()
    reports: list[AuditReport] = []
    for timeline, shares in zip(timelines_of(urls), detections, strict=True):
        inputs: list[dict[str, Any]] = []
        anomalies: dict[str, int] = {}
        samples: list[dict[str, Any]] = []
        for index in timeline:
            result = mapped[index]
            if result.error is not None:
                raise InputError(result.error)
            inputs.append(result.summary)
            for what, count in result.anomalies.items():
                anomalies[what] = anomalies.get(what, 0) + count
            samples.extend(result.anomaly_samples[: ANOMALY_SAMPLES - len(samples)])
        findings = []
        sections: dict[str, list[dict[str, Any]]] = {}
        for detection in shares:
            findings.extend(detection.findings)
            for name, rows in detection.sections.items():
                sections.setdefault(name, []).extend(rows)
            for what, count in detection.caps.items():
                anomalies[what] = anomalies.get(what, 0) + count
        report = AuditReport(
            kind="analyze",
            generated_at=generated_at,
            inputs=inputs,
            findings=findings,
            anomalies=anomalies,
            anomaly_samples=samples,
            sections={name: sorted(rows, key=_canonical_row) for name, rows in sections.items()},
            policy=policy,
        )
        report.findings = report.sorted_findings()
        reports.append(report)
    if not reports:
        return AuditReport(kind="analyze", generated_at=generated_at, policy=policy)
    return merge_reports(reports, generated_at)


def run_shares(
    urls: Sequence[str],
    context: Context,
    shares: int,
    generated_at: str = "",
    names: Sequence[str] | None = None,
) -> AuditReport:
    """The cluster's work done here, task by task (the reference for the cluster run)."""
    names = list(names) if names is not None else list(urls)
    mapped = [map_capture(url, shares, name) for url, name in zip(urls, names, strict=True)]
    detections: list[list[Detection]] = []
    for timeline in timelines_of(urls):
        runners = [
            detect_share(context, [share_of(mapped[i], share) for i in timeline])
            for share in range(shares)
        ]
        facts = merge_shared_facts(share_facts(runner) for runner in runners)
        detections.append([finish_share(runner, facts) for runner in runners])
    return assemble_report(urls, mapped, detections, context, generated_at)


# -- Dask ---------------------------------------------------------------------------------


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError("--cluster needs Dask: pip install 'dotaudit[cluster]'") from None
    return distributed


def connect(address: str) -> tuple[Any, Any]:
    """A Dask client for ``tcp://HOST:PORT`` (an existing scheduler) or ``local:N`` (a
    ``LocalCluster`` of N single-threaded worker processes, closed with the client)."""
    distributed = _import_distributed()
    if address.startswith(LOCAL_PREFIX):
        count = address.removeprefix(LOCAL_PREFIX)
        if not count.isdigit() or int(count) < 1:
            raise ClusterError(f"--cluster {address}: local:N needs a worker count of 1 or more")
        import dask

        # The workers' statistical profiler samples every task's stack 100 times a
        # second: about 9% of the CPU of these pure-Python tasks, for a dashboard
        # nobody looks at here.
        dask.config.set({"distributed.worker.profile.enabled": False})
        cluster = distributed.LocalCluster(
            n_workers=int(count),
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never "8787 is already in use"
            silence_logs=50,
        )
        return distributed.Client(cluster), cluster
    if "://" not in address:
        raise ClusterError(f"--cluster {address}: give tcp://HOST:PORT or local:N")
    try:
        client = distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"--cluster {address}: cannot reach the scheduler: {exc}") from None
    return client, None


def analyze_on_cluster(
    urls: Sequence[str],
    context: Context,
    address: str,
    *,
    progress: ProgressSink | None = None,
    generated_at: str = "",
    shares: int | None = None,
    names: Sequence[str] | None = None,
    shuffle: bool | None = None,
) -> AuditReport:
    """``analyze`` of ``urls`` on the Dask cluster at ``address``; equal to the local run
    in findings (see ``assemble_report`` for the order). ``names`` are what the report
    calls the inputs (the URLs by default). ``shuffle``: None shuffles by client only the
    timelines of several inputs (a timeline of one input is read and judged in one task,
    with nothing to move); True shuffles every timeline, False none."""
    names = list(names) if names is not None else list(urls)
    distributed = _import_distributed()
    client, cluster = connect(address)
    futures: list[Any] = []
    try:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        shares = shares or 2 * workers
        submit = client.submit
        summaries: list[Any] = [None] * len(urls)
        detections: list[list[Any]] = []
        # Everything is submitted at once, so that reduces start as their maps end. Inputs
        # are read where their task runs: the URL travels, never the bytes, and only
        # summaries and findings come back here.
        for number, timeline in enumerate(timelines_of(urls)):
            if not (shuffle or (shuffle is None and len(timeline) > 1)):
                (index,) = timeline
                whole = submit(analyze_input, urls[index], names[index], context,
                               key=f"analyze-{index}", retries=TASK_RETRIES)  # fmt: skip
                summaries[index] = submit(summary_of_analysis, whole, key=f"summary-{index}")
                found = submit(detection_of_analysis, whole, key=f"found-{index}")
                futures.extend([whole, summaries[index], found])
                detections.append([found])
                continue
            maps = {}
            for index in timeline:
                maps[index] = submit(map_capture, urls[index], shares, names[index],
                                     key=f"map-{index}", retries=TASK_RETRIES)  # fmt: skip
                summaries[index] = submit(map_summary, maps[index], key=f"summary-{index}")
            futures.extend([*maps.values(), *(summaries[i] for i in timeline)])
            runners = []
            for share in range(shares):
                parts = [
                    submit(share_of, maps[i], share, key=f"share-{i}-{share}") for i in timeline
                ]
                detect_key = f"detect-{number}-{share}"
                runners.append(
                    submit(
                        _detect_share_parts, context, *parts, key=detect_key, retries=TASK_RETRIES
                    )
                )
                futures.extend(parts)
            facts = [
                submit(share_facts, r, key=f"facts-{number}-{i}") for i, r in enumerate(runners)
            ]
            merged = submit(_merge_facts, *facts, key=f"merged-facts-{number}")
            finished = [
                submit(finish_share, r, merged, key=f"finish-{number}-{i}", retries=TASK_RETRIES)
                for i, r in enumerate(runners)
            ]
            futures.extend([*runners, *facts, merged, *finished])
            detections.append(finished)
        for result in _follow_maps(distributed, summaries, progress):
            if result.error is not None:
                raise InputError(result.error)
        gathered = client.gather(detections)
        mapped = client.gather(summaries)
        return assemble_report(urls, mapped, gathered, context, generated_at)
    except KeyboardInterrupt:
        client.cancel(futures, force=True)
        raise
    finally:
        client.cancel(futures)  # an error above leaves nothing running on the cluster
        client.close()
        if cluster is not None:
            cluster.close()


def _detect_share_parts(context: Context, *parts: bytes) -> Any:
    return detect_share(context, parts)


def _merge_facts(*shares: dict[str, Any]) -> dict[str, Any]:
    return merge_shared_facts(shares)


def _follow_maps(
    distributed: Any, futures: list[Any], progress: ProgressSink | None
) -> Iterator[MappedCapture]:
    """Each input's map result as it ends (in the order they end), telling ``progress``."""
    packets = shuffled = events = 0
    for done, future in enumerate(distributed.as_completed(futures), 1):
        result: MappedCapture = future.result()
        packets += int(result.summary.get("packets", 0))
        shuffled += result.shuffled_bytes
        events += result.events
        if progress is not None:
            progress(ClusterProgress(done, len(futures), packets, shuffled, events))
        yield result
