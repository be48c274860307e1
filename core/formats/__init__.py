"""Import formats, each a module with ``sniff(path)``, ``read(path, config, report)`` and, where ReportLens writes
the format, ``write``; :mod:`core.formats.registry` lists them (name, file types, description) for the Import page,
the CLI and every import path.

- :mod:`~core.formats.labelstudio`: Label Studio full JSON (read and write, a round trip);
  :mod:`~core.formats.jsonmin`: JSON-MIN; :mod:`~core.formats.conll`: CONLL2003;
  :mod:`~core.formats.dicom`: DICOM SR; :mod:`~core.formats.brat`: brat standoff.
- Shared parts: :mod:`~core.formats.report` (the parse report, encoding checks), :mod:`~core.formats.jsonstream`
  (streamed JSON, shape and syntax errors), :mod:`~core.formats.lsresults` (Label Studio results, the per-file
  context), :mod:`~core.formats.labelconfig` (labeling configs), :mod:`~core.formats.archive` (zip members).
"""
