"""Executors: the interface (:mod:`.base`) and one implementation a module (:mod:`.local`: this process's
worker pool; :mod:`.celery`: Celery workers)."""
