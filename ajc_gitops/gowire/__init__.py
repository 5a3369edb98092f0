"""Go's wire formats, as pure functions: ``encoding/json`` (``gojson``, ``gomarshal``), ``time``
(``gotime``, ``godate``), ``time.Duration`` (``durations``), robfig/cron (``cron``) and
segmentio/ksuid (``ksuid``). No I/O, no clock reads, no imports from the rest of ajc_gitops but
``model``; everything above builds on these."""
