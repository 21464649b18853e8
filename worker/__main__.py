"""``python -m worker ...``: see ``worker.cli``."""

from worker.cli import main

raise SystemExit(main())
