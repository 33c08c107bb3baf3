"""HTTP clients for the downstream services; every failure surfaces as DownstreamError."""

from .blob_service import BlobNotFound, BlobStream, StoredBlob, open_blob, put_blob
from .http import DownstreamError
from .job_service import RemoteJob, RemoteJobNotFound, cancel_job, get_job, submit_job

__all__ = [
    "BlobNotFound",
    "BlobStream",
    "DownstreamError",
    "RemoteJob",
    "RemoteJobNotFound",
    "StoredBlob",
    "cancel_job",
    "get_job",
    "open_blob",
    "put_blob",
    "submit_job",
]
