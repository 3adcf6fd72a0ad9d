"""A mutational fuzzer for dotaudit's capture entry points.

``python -m tests.fuzz --time 600`` (or ``make fuzz``) mutates the sample captures in
``pcaps/`` and the public corpus in ``../shared/corpus/public`` (pcap and pcapng file
headers, record lengths, timestamps, link types, pcapng block types, lengths and
options, IP/TCP/UDP header fields, payload bytes by bit flips, byte sets, splices,
truncations and duplications, and now and then a gzip wrapping, whole or damaged), and
runs each mutant through one of

- ``python -m dotaudit analyze FILE --format json -o OUT [--policy P]``,
- ``python -m dotaudit analyze FILE --format json -o OUT --evidence DIR``,
- ``python -m dotaudit events FILE -o OUT [--workers 2]``,

under an address-space limit (1 GiB) and a time limit (20 s). Each run is judged
(:func:`tests.fuzz.execute.classify`):

- ok: exit 0 or 1, and the output is what its format promises (a JSON report, JSON lines);
- input error: exit 2 with exactly one stderr line ``dotaudit: ...`` (the last; others may
  only be ``warning:``/``error:`` lines) and no traceback;
- incomplete: exit 2 because the input was unreadable (``dotaudit: FILE: unreadable: ...``
  the last line, after the text summary), and the output written all the same;
- crash: anything else: a traceback, another exit code, a signal, the time or memory
  limit, a temporary file left in the output directory, a changed input, bad output.

Mutants run in a fresh subprocess each, or (``--mode mixed``, the default, for all but
every ``--subprocess-every``-th; ``--mode in-process`` for all) in a long-lived worker
that calls the CLI's ``main`` in-process, about ten times faster; see
:mod:`tests.fuzz.execute` for what that trades away. A crash found in-process is re-run
in a subprocess before it is kept.

The first capture of each crash class (exception type and innermost dotaudit frame, or
the kind of failure) is shrunk roughly (records or blocks dropped while it still crashes)
and saved by content hash under ``tests/data/fuzz-regressions/``;
``tests/test_fuzz/test_regressions.py`` runs every saved capture through the real entry
points. Runs are reproducible: mutant ``i`` of ``--seed S`` is always the same, as are its
target and mode.
"""
