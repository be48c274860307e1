"""The Label Studio round trip: a queue batch goes out as pre-annotated tasks, finished annotations come back.

Behind ``cli.py push`` / ``pull`` and the Label Studio page (both call these functions). :mod:`.client`: the
connection, the SDK client and its errors; :mod:`.push`: batches out (an import file or a server); :mod:`.pull`:
annotations back.

* ``build_import_tasks`` / ``write_import_file``: a Label Studio import file (tasks with ``data`` and
  ``predictions``: ``model_version``, document ``score``, per-region ``score``, written by
  :func:`core.formats.labelstudio.span_prediction_task`) for a batch or a list of documents,
  from the stored ``Prediction`` rows of the batch's model version (the model runs for documents without one).
* ``push``: the same tasks sent to a server with ``label-studio-sdk``. The Label Studio project is created with
  the project's labeling config when none is linked (the link, without the token, goes to ``Project.settings``);
  documents that already have a task there are reused and get the prediction attached unless that model version's
  prediction is already on the task. Every task carries ``data.reportlens_document_id`` and task ids are recorded
  after each chunk, so a push that fails midway is retried without duplicating tasks.
* ``pull``: the export API's tasks imported through ``db.importer.import_tasks`` (one transaction, idempotent),
  with the predictions' objects fetched separately (the export lists them by id), and a per-document report of
  new / updated / unchanged human annotations.

URL and token come from the caller or ``REPORTLENS_LS_URL`` / ``REPORTLENS_LS_TOKEN``; the token is never stored,
logged or put in a message. A server that is down, a wrong URL, a refused token or a missing project raise one
:class:`~services.labelstudio.client.LabelStudioError` saying what and how to fix it; nothing is half-written locally.
"""
