"""Multi-camera person tracking: YOLO -> per-camera Ultralytics trackers -> 4-frame clips ->
running-mean re-ID signatures -> global identities across cameras.

Entry points: ``tracker.runner.PipelineRunner`` (threaded, for the viewer),
``tracker.cli`` (``python -m tracker run``), ``tracker.pipeline.Pipeline`` (the synchronous core).
"""
