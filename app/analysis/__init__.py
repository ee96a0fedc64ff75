"""The analytic engine, pure Python: a normalized spec's figures (:mod:`.engine`), the size limits checked on
them (:mod:`.limits`), and the warnings for models that build but likely surprise (:mod:`.warnings`)."""
