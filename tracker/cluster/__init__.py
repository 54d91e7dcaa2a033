"""Cameras on many machines, one identity space: the pipeline on a Ray cluster (``--cluster``).

Each camera runs in its own Ray actor (``camera_actor``): read, detect, track, cut clips, embed:
``Pipeline.process`` for that one camera. One matcher actor (``matcher_actor``) receives every
camera's ``CameraUpdate`` (boxes, clip features, ended tracks, best crops as JPEG; never frames),
runs ``Pipeline.identify`` over them in a fixed order, writes the outputs and the identity store,
and serves snapshots to an attached viewer. ``launch.run_cluster`` starts and watches the job.

Ray is imported only by ``launch``, ``camera_actor``, ``matcher_actor`` and ``attach``, and only
when ``--cluster`` (or the viewer's ``--attach``) is given; ``options``, ``messages``,
``camera_worker`` and ``matcher_core`` hold the logic without Ray, so it is tested without a cluster.
"""
