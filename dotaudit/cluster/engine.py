"""``analyze`` on a Dask cluster: map inputs to events, shuffle by client, detect, merge.

See docs/scale.md for the design and its limits. The task functions are in
``tasks.py``; this module builds the graph, follows its progress and assembles the one
report. ``run_shares`` does the same work in this process, one task after another: it
is what the cluster's result is compared with, share for share.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dotaudit.cluster.tasks import (
    MappedCapture,
    analyze_capture_set,
    analyze_input,
    detect_share,
    detection_of_analysis,
    finish_share,
    map_capture,
    map_summary,
    share_facts,
    share_of,
)
from dotaudit.detect.base import Context
from dotaudit.detect.runner import Detection, merge_shared_facts
from dotaudit.errors import ClusterError, InputError
from dotaudit.model.report import (
    ANOMALY_SAMPLES,
    AuditReport,
    combined_sections,
    merge_reports,
)

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


def timelines_of(count: int, groups: Sequence[Sequence[int]] | None = None) -> list[list[int]]:
    """Which inputs are read as one timeline: ``groups`` (a local run's capture sets, by
    input number) or each input on its own."""
    if groups is None:
        return [[index] for index in range(count)]
    return [list(group) for group in groups]


def _canonical_row(row: dict[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(row.get("file", "")),
        str(row.get("client", "")),
        str(row.get("server", "")),
        json.dumps(row, sort_keys=True, default=str),
    )


def assemble_report(
    mapped: Sequence[Sequence[MappedCapture]],
    detections: Sequence[Sequence[Detection]],
    context: Context,
    generated_at: str,
) -> AuditReport:
    """One report from every timeline's inputs (``mapped``) and shares (``detections``).
    Within a timeline, findings and rows are put in one canonical order (the order of a
    local run follows the capture, which shares no longer share): findings as the report
    ranks them, rows by file, client, server and content."""
    policy = context.policy.to_dict()
    reports: list[AuditReport] = []
    for inputs_read, shares in zip(mapped, detections, strict=True):
        inputs: list[dict[str, Any]] = []
        anomalies: dict[str, int] = {}
        samples: list[dict[str, Any]] = []
        for result in inputs_read:
            if result.error is not None:
                raise InputError(result.error)
            inputs.append(result.summary)
            for what, count in result.anomalies.items():
                anomalies[what] = anomalies.get(what, 0) + count
            samples.extend(result.anomaly_samples[: ANOMALY_SAMPLES - len(samples)])
        findings = []
        sections = combined_sections(detection.sections for detection in shares)
        for detection in shares:
            findings.extend(detection.findings)
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
    """The cluster's shuffled work done here, task by task, each input its own timeline
    (the reference for the cluster run's shuffle)."""
    names = list(names) if names is not None else list(urls)
    mapped = [
        map_capture(url, shares, name, context) for url, name in zip(urls, names, strict=True)
    ]
    detections: list[list[Detection]] = []
    timelines = timelines_of(len(urls))
    for timeline in timelines:
        runners = [
            detect_share(context, [share_of(mapped[i], share) for i in timeline])
            for share in range(shares)
        ]
        facts = merge_shared_facts(share_facts(runner) for runner in runners)
        detections.append([finish_share(runner, facts) for runner in runners])
    per_timeline = [[mapped[i] for i in timeline] for timeline in timelines]
    return assemble_report(per_timeline, detections, context, generated_at)


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
    shuffle: bool = False,
    groups: Sequence[Sequence[int]] | None = None,
    capture_sets: Mapping[int, Any] | None = None,
) -> AuditReport:
    """``analyze`` of ``urls`` on the Dask cluster at ``address``; equal to the local run
    in findings (see ``assemble_report`` for the order). ``names`` are what the report
    calls the inputs (the URLs by default); ``groups`` the timelines, as input numbers,
    and ``capture_sets`` the ``InputGroup`` of each timeline of several local files, by
    its first input (each read and judged in one task, as a local run reads it). A
    single input is read and judged in one task too, unless ``shuffle``:
    then its events are cut by client into shares, each judged in a task of its own."""
    names = list(names) if names is not None else list(urls)
    distributed = _import_distributed()
    client, cluster = connect(address)
    futures: list[Any] = []
    try:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        shares = shares or 2 * workers
        submit = client.submit
        summaries: list[Any] = []
        detections: list[list[Any]] = []
        # Everything is submitted at once, so that reduces start as their maps end. Inputs
        # are read where their task runs: the URL travels, never the bytes, and only
        # summaries and findings come back here.
        for number, timeline in enumerate(timelines_of(len(urls), groups)):
            if len(timeline) > 1:
                if capture_sets is None or timeline[0] not in capture_sets:
                    raise ValueError("a timeline of several inputs needs its capture set")
                whole = submit(
                    analyze_capture_set,
                    capture_sets[timeline[0]],
                    [names[i] for i in timeline],
                    context,
                    key=f"set-{number}",
                    retries=TASK_RETRIES,
                )
                summaries.append(submit(_set_summaries, whole, key=f"summary-{number}"))
                found = submit(_set_detection, whole, key=f"found-{number}")
                futures.extend([whole, summaries[-1], found])
                detections.append([found])
                continue
            (index,) = timeline
            if not shuffle:
                whole = submit(analyze_input, urls[index], names[index], context,
                               key=f"analyze-{index}", retries=TASK_RETRIES)  # fmt: skip
                summaries.append(submit(_input_summaries, whole, key=f"summary-{number}"))
                found = submit(detection_of_analysis, whole, key=f"found-{number}")
                futures.extend([whole, summaries[-1], found])
                detections.append([found])
                continue
            mapped = submit(map_capture, urls[index], shares, names[index], context,
                            key=f"map-{index}", retries=TASK_RETRIES)  # fmt: skip
            summaries.append(submit(_map_summaries, mapped, key=f"summary-{number}"))
            futures.extend([mapped, summaries[-1]])
            runners = []
            for share in range(shares):
                part = submit(share_of, mapped, share, key=f"share-{index}-{share}")
                detect_key = f"detect-{number}-{share}"
                runners.append(
                    submit(_detect_share_parts, context, part, key=detect_key, retries=TASK_RETRIES)
                )
                futures.append(part)
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
        read: list[list[MappedCapture]] = [[] for _ in summaries]
        position = {future.key: n for n, future in enumerate(summaries)}
        for future, results in _follow_maps(distributed, summaries, len(urls), progress):
            for result in results:
                if result.error is not None:
                    raise InputError(result.error)
            read[position[future.key]] = results
        gathered = client.gather(detections)
        return assemble_report(read, gathered, context, generated_at)
    except KeyboardInterrupt:
        client.cancel(futures, force=True)
        raise
    finally:
        client.cancel(futures)  # an error above leaves nothing running on the cluster
        client.close()
        if cluster is not None:
            cluster.close()


def _set_summaries(whole: tuple[list[MappedCapture], Detection]) -> list[MappedCapture]:
    return whole[0]


def _set_detection(whole: tuple[list[MappedCapture], Detection]) -> Detection:
    return whole[1]


def _input_summaries(whole: tuple[MappedCapture, Detection]) -> list[MappedCapture]:
    return [whole[0]]


def _map_summaries(mapped: MappedCapture) -> list[MappedCapture]:
    return [map_summary(mapped)]


def _detect_share_parts(context: Context, *parts: bytes) -> Any:
    return detect_share(context, parts)


def _merge_facts(*shares: dict[str, Any]) -> dict[str, Any]:
    return merge_shared_facts(shares)


def _follow_maps(
    distributed: Any, futures: list[Any], files: int, progress: ProgressSink | None
) -> Iterator[tuple[Any, list[MappedCapture]]]:
    """Each timeline's input summaries as its task ends (in the order they end), telling
    ``progress`` as each one does."""
    done = packets = shuffled = events = 0
    for future in distributed.as_completed(futures):
        results: list[MappedCapture] = future.result()
        for result in results:
            done += 1
            packets += int(result.summary.get("packets", 0) or 0)
            shuffled += result.shuffled_bytes
            events += result.events
        if progress is not None:
            progress(ClusterProgress(done, files, packets, shuffled, events))
        yield future, results
