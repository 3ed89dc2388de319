"""The ``rxchat`` command line: ``chat``, ``ask`` and ``serve``.

Layers, each a module, calling downwards only:

```text
_main      main(argv, stdout=, stderr=, stdin=, env=) -> exit status
_args      the grammar (argparse, writing to the injected streams)
_chat      the interactive loop on a ChatSession
_slash     its slash commands (/help, /undo, /save PATH, ...)
_oneshot   ask (one streamed reply) and serve (the offline server)
_backend   the configured provider, or the in-process offline model
_reply     one reply: deltas over a queue to the main thread; Ctrl-C cancels
_render    colours, spinner, reasoning set apart, the stats line
_console   the injected streams, environment and readline input
_errors    exit statuses by error family, the one-line report
```

Exit statuses (`ExitCode`): 0 ok, 1 other, 2 usage or configuration,
3 authentication, 4 bad request, 5 rate limit, 6 server error, 7 connection or
timeout, 8 broken stream, 130 interrupted by Ctrl-C.
"""

from __future__ import annotations

from ._errors import ExitCode, exit_code_for
from ._main import main, main_entry

__all__ = ["ExitCode", "exit_code_for", "main", "main_entry"]
