"""Model summaries and exports: the service (:mod:`.service`), its cache of workers' answers (:mod:`.cache`),
and the response models (:mod:`.models`)."""
