"""Training runs: their states (:mod:`.status`), response models (:mod:`.models`), the recorder of their steps
(:mod:`.recorder`), the service the routes call (:mod:`.service`), where they are kept (:mod:`.store`) and
where they run (:mod:`.executors`)."""
