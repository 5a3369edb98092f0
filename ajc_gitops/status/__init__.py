"""``ajc-gitops status`` as data: what each schedule is, which of its slots fired and how.
Pure (no I/O, no clock): ``scheduler/status.py`` reads the store and fills it, ``render/``
shows it."""
