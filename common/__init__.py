"""What the bot and the worker share, and nothing else: the job contract and the config."""
