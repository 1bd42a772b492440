"""The terminal: ``copilot clean/apply/tools/demo/doctor`` and ``serve``, which starts the API (``app``)."""
