"""batchplane: an event-driven, serverless control plane for AWS Batch."""

__version__ = "0.1.0"
