"""dissect: explain what the individual neurons of audio models respond to."""

__version__ = "0.1.0"
