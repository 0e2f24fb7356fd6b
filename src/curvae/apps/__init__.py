"""Applications: flows that string the stages together (the demo; a report of any source).

This layer sits above the libraries: it may import training, export, runtime
and report; none of them imports it.
"""
