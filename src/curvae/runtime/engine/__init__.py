"""Running graphs: onnxruntime sessions, execution providers, where each node ran, and the session cache.

- ``onnxrt``: onnxruntime, imported on first use, with the extras named when it is missing;
- ``providers``: ``"auto"``, ``"cuda,cpu"`` and provider tuples resolved against the installed build;
- ``session``: one :class:`onnxruntime.InferenceSession` from verified graph bytes;
- ``placement``: which provider ran each node (onnxruntime's profiler);
- ``cache``: one pair of sessions per bundle and options per process (pickled models reuse it);
- ``lanes``: large batches over one single-threaded session per core;
- ``runner``: a graph run on rows in chunks, non-finite codes named.
"""
