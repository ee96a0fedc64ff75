"""Run stores: the interface (:mod:`.base`) and one backend a module (:mod:`.sqlite`, :mod:`.redis`)."""
