"""The platform-neutral bot core shared by the Telegram and Discord adapters.

No chat library and no TensorFlow here: user state and limits in Redis (every key with a TTL,
user ids only as keyed hashes), the protect flow over ``bot.queue.JobQueue``, the report caption
and the English/Korean messages. Modules: ``users`` (ids → keys), ``store`` (settings, last
photo, forget), ``limits``, ``status``, ``flow``, ``captions``, ``i18n``, ``files`` (uploads in,
the lossless PNG that fits out), ``logs`` (secrets out of logs), ``service`` (``BotCore``).
"""
