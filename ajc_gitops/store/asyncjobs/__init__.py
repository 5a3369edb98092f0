"""asyncjobs over the KV core: its streams and queues (``streams``), firing tasks (``tasks``,
with ``task_replies``), task events (``events``), the election key (``election``), a live KV
watch (``watch``) and the scheduler group's member markers (``group``), each as Go does it.
They reach NATS only through ``Store``'s public adapter members (see ``store/kv``).
"""
