"""mcreid's PyQt5 desktop viewer: live camera views, boxes labelled by global identity.

``python -m app --source a.mp4 --source rtsp://...`` (or ``mcreid-viewer``). Nothing here imports
PyQt5 at package import: ``app.qt.load_qt`` does, with the fix in the message when it fails.
"""
