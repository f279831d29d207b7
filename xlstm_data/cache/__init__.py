"""Token caches: text tokenized once (`prepare`), combined (`merge`), read by `TokenCacheSource`.

A cache is a folder of ArrayRecord shards (`shard_000000.arecord`, …; one record per document,
its tokens as raw uint16 or int32) and a `metadata.json`; see docs/token_cache.md.
"""
