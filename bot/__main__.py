"""``python -m bot``: the service (Redis, workers, the Telegram bot or the sample run); see
``bot.launcher``."""

from bot.launcher import main

raise SystemExit(main())
