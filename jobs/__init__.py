"""Background jobs as infrastructure: the queue table (:mod:`jobs.queue`), the worker registry
(:mod:`jobs.workers`), the worker process (:mod:`jobs.worker`), what handlers see (:mod:`jobs.context`) and
starting a worker from the app (:mod:`jobs.launcher`). The handlers themselves live with what they run
(``training.handlers``); this package never imports ``training``."""
