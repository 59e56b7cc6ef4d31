"""``python -m tests.bench``: see tests/bench/run.py."""

from tests.bench.run import main

raise SystemExit(main())
