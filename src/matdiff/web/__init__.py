"""matdiff's local web page (``matdiff serve``) and notebook display.

``app`` needs the ``web`` extra (FastAPI, uvicorn, latex2mathml); ``notebook`` needs only
matdiff, and uses latex2mathml for MathML where it is installed.
"""
