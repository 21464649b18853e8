"""DeepfakeBlock chat bots (Telegram, Discord): thin adapters over a platform-neutral core."""
