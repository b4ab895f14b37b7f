"""Real HTTP servers on 127.0.0.1 that play outside systems in tests (STYLE: no patching our own code)."""
