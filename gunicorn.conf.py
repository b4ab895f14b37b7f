"""gunicorn's settings, for every way we serve the app: `make run` with WEB_SERVER=gunicorn (scripts/serve.py)
and production (README, "Deploying"). gunicorn also reads this file by itself when started from the repository.

Threaded workers, not sync ones. A sync worker serves one request at a time, so as many slow request bodies
as there are workers (partners on slow links, or someone replaying a signed request within its five minutes)
would hold every worker, and /healthz with them. A gthread worker reads each request in one of `threads`
threads: a body trickling in holds one thread, and only until its read deadline (UPLOAD_READ_GRACE_SECONDS,
UPLOAD_READ_MIN_BYTES_PER_SECOND; security/request_body.py answers 408 then), while the other threads keep
answering. Unsigned requests are refused before their body is read, so they hold a thread for no longer than
their headers take. The proxy in front buffers request bodies, so in production the app receives whole bodies
at network speed and slow clients wait at the proxy, not here.

WEB_WORKERS (default 3; in production 2 * CPUs + 1) and WEB_THREADS (default 8) size it; keep WEB_THREADS
above the number of uploads you expect at once on one worker.
"""

import os

worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS", "3"))
threads = int(os.environ.get("WEB_THREADS", "8"))
# A large upload may take minutes to verify and store; gthread workers keep beating while a thread works.
timeout = 300
