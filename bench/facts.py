"""Do dotaudit and tshark report the same facts? DNS question names and TLS/QUIC SNIs,
compared as sets, with the differences listed (they are bug reports for one side)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

SHOW = 8  # differing names listed per side

KNOWN_DIFFERENCES = (
    "tshark's `dns` filter does not match mDNS/LLMNR (Wireshark dissects them as separate "
    "protocols), so dotaudit's dns records with service mdns/llmnr are left out and counted "
    "apart.",
    "tshark decrypts QUIC Initials and reports their SNI under tls.handshake; dotaudit's "
    "side is tls_client_hello.sni plus quic_initial.sni.",
    "tshark prints every question of a message, dotaudit records the first (qdcount>1 is "
    "rare outside mDNS).",
    "tshark writes the root name as <Root>; both sides are normalised to '.'.",
    "tshark picks UDP dissectors by port before heuristics: a QUIC client whose ephemeral "
    "port is registered to another protocol (e.g. 44818 EtherNet/IP, 41170 Manolito) is "
    "not seen as QUIC, so dotaudit may count an SNI more often than tshark.",
)


@dataclasses.dataclass
class Facts:
    dns: Counter[str] = dataclasses.field(default_factory=Counter)
    sni: Counter[str] = dataclasses.field(default_factory=Counter)
    quic_sni: Counter[str] = dataclasses.field(default_factory=Counter)
    mdns: Counter[str] = dataclasses.field(default_factory=Counter)
    first_frame: dict[str, int] = dataclasses.field(default_factory=dict)
    quic_initials: int = 0
    quic_initials_without_sni: int = 0


def _norm(name: str) -> str:
    name = name.strip()
    if name in ("", "<Root>", "."):
        return "."
    return name


def tshark_facts(path: Path) -> Facts:
    """Parse ``-T fields -e dns.qry.name -e tls.handshake.extensions_server_name`` output:
    one line per frame, several values in a field joined by commas."""
    facts = Facts()
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            qnames, _, snis = line.rstrip("\n").partition("\t")
            if qnames:
                facts.dns.update(_norm(n) for n in qnames.split(","))
            if snis:
                facts.sni.update(n for n in snis.split(",") if n)
    return facts


def dotaudit_facts(path: Path) -> Facts:
    """Read ``dotaudit events --type dns,tls_client_hello,quic_initial`` JSONL."""
    facts = Facts()
    with path.open(encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            kind = rec.get("type")
            if kind == "dns":
                qname = rec.get("qname")
                if qname is None:
                    continue
                name = _norm(qname)
                if rec.get("service", "dns") != "dns":
                    facts.mdns[name] += 1
                    continue
                facts.dns[name] += 1
                facts.first_frame.setdefault("dns:" + name, rec.get("frame", 0))
            elif kind in ("tls_client_hello", "quic_initial"):
                sni = rec.get("sni")
                if kind == "quic_initial":
                    facts.quic_initials += 1
                    if not sni:
                        facts.quic_initials_without_sni += 1
                if not sni:
                    continue
                facts.sni[sni] += 1
                if kind == "quic_initial":
                    facts.quic_sni[sni] += 1
                facts.first_frame.setdefault("sni:" + sni, rec.get("frame", 0))
    return facts


@dataclasses.dataclass
class SetDiff:
    what: str
    tshark_distinct: int
    dotaudit_distinct: int
    tshark_count: int
    dotaudit_count: int
    only_tshark: list[str]
    only_dotaudit: list[str]
    agree_ignoring_case: bool
    count_differences: list[tuple[str, int, int]]
    """(name, tshark count, dotaudit count) for names both report, different times."""

    @property
    def agree(self) -> bool:
        return not self.only_tshark and not self.only_dotaudit


def _diff(what: str, ours: Counter[str], theirs: Counter[str]) -> SetDiff:
    a, b = set(theirs), set(ours)
    return SetDiff(
        what,
        len(a),
        len(b),
        sum(theirs.values()),
        sum(ours.values()),
        sorted(a - b),
        sorted(b - a),
        {n.casefold() for n in a} == {n.casefold() for n in b},
        [(n, theirs[n], ours[n]) for n in sorted(a & b) if theirs[n] != ours[n]],
    )


@dataclasses.dataclass
class FactDiff:
    dns: SetDiff
    sni: SetDiff
    mdns_names: int
    quic_sni_names: int
    quic_initials: int
    quic_initials_without_sni: int
    first_frame: dict[str, int]
    sni_origins: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for d, kind in ((self.dns, "dns"), (self.sni, "sni")):
            out[kind] = {
                "agree": d.agree,
                "agree_ignoring_case": d.agree_ignoring_case,
                "tshark_distinct": d.tshark_distinct,
                "dotaudit_distinct": d.dotaudit_distinct,
                "tshark_count": d.tshark_count,
                "dotaudit_count": d.dotaudit_count,
                "only_tshark": d.only_tshark[:200],
                "only_tshark_total": len(d.only_tshark),
                "only_dotaudit": [
                    {"name": n, "frame": self.first_frame.get(f"{kind}:{n}")}
                    for n in d.only_dotaudit[:200]
                ],
                "only_dotaudit_total": len(d.only_dotaudit),
                "count_differences": [
                    {
                        "name": n,
                        "tshark": t,
                        "dotaudit": o,
                        "dotaudit_first_frame": self.first_frame.get(f"{kind}:{n}"),
                    }
                    for n, t, o in d.count_differences[:200]
                ],
                "count_differences_total": len(d.count_differences),
            }
        out["sni"]["tshark_only_origins"] = self.sni_origins
        out["mdns_names_dotaudit"] = self.mdns_names
        out["quic"] = {
            "dotaudit_quic_initials": self.quic_initials,
            "dotaudit_quic_initials_without_sni": self.quic_initials_without_sni,
            "dotaudit_quic_sni_names": self.quic_sni_names,
        }
        out["known_differences"] = list(KNOWN_DIFFERENCES)
        return out

    @staticmethod
    def print_json(facts: dict[str, Any]) -> None:
        if "error" in facts:
            print(f"  facts: {facts['error']}")
            return
        for kind, label in (("dns", "DNS names"), ("sni", "SNIs")):
            d = facts[kind]
            state = "AGREE" if d["agree"] else "DISAGREE"
            if not d["agree"] and d["agree_ignoring_case"]:
                state += " (only in letter case)"
            print(
                f"  facts: {label} {state}: tshark {d['tshark_distinct']:,} distinct "
                f"({d['tshark_count']:,} seen), dotaudit {d['dotaudit_distinct']:,} distinct "
                f"({d['dotaudit_count']:,} seen)"
            )
            if d["only_tshark_total"]:
                names = ", ".join(d["only_tshark"][:SHOW])
                print(f"    only tshark ({d['only_tshark_total']}): {names}")
                origins = d.get("tshark_only_origins") or {}
                for name in d["only_tshark"][:SHOW]:
                    if name in origins:
                        print(f"      {name}: tshark saw it in {origins[name]}")
            if d["only_dotaudit_total"]:
                names = ", ".join(
                    f"{x['name']} (frame {x['frame']})" for x in d["only_dotaudit"][:SHOW]
                )
                print(f"    only dotaudit ({d['only_dotaudit_total']}): {names}")
            if d["count_differences_total"]:
                names = ", ".join(
                    f"{x['name']} tshark {x['tshark']} / dotaudit {x['dotaudit']}"
                    for x in d["count_differences"][:SHOW]
                )
                print(
                    f"    seen a different number of times ({d['count_differences_total']}): "
                    + names
                )
        q = facts["quic"]
        print(
            f"  facts: dotaudit saw {q['dotaudit_quic_initials']:,} QUIC Initials "
            f"({q['dotaudit_quic_initials_without_sni']:,} without SNI, e.g. ACK-only), "
            f"{q['dotaudit_quic_sni_names']:,} distinct QUIC SNIs; "
            f"{facts['mdns_names_dotaudit']:,} mDNS/LLMNR names not compared"
        )


def compare(theirs: Facts, ours: Facts) -> FactDiff:
    return FactDiff(
        dns=_diff("dns", ours.dns, theirs.dns),
        sni=_diff("sni", ours.sni, theirs.sni),
        mdns_names=len(ours.mdns),
        quic_sni_names=len(ours.quic_sni),
        quic_initials=ours.quic_initials,
        quic_initials_without_sni=ours.quic_initials_without_sni,
        first_frame=ours.first_frame,
    )


def tshark_sni_origins(tshark: str, capture: Path, names: list[str]) -> dict[str, str]:
    """Where tshark found SNIs that dotaudit missed: first frame and carrier (TCP or QUIC)."""
    if not names:
        return {}
    wanted = set(names)
    cmd = [
        tshark, "-r", str(capture), "-Y", "tls.handshake.type==1", "-T", "fields",
        "-e", "frame.number", "-e", "frame.protocols", "-e", "tls.handshake.extensions_server_name",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    origins: dict[str, str] = {}
    for line in done.stdout.splitlines():
        frame, protocols, snis = [*line.split("\t"), "", ""][:3]
        carrier = "QUIC" if ":quic" in protocols else "TCP"
        for sni in snis.split(","):
            if sni in wanted and sni not in origins:
                origins[sni] = f"{carrier} frame {frame}"
    return origins
