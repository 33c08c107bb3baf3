"""The worker tier's own record: one circuit breaker per downstream service (breaker.py)."""

from django.db import models


class CircuitState(models.TextChoices):
    CLOSED = "closed"  # calls go through
    OPEN = "open"  # the service is down: jobs for it wait, and a probe is let through per interval
    HALF_OPEN = "half_open"  # a probe is out: its outcome closes or opens the circuit again


class CircuitBreaker(models.Model):
    """A downstream service's circuit, shared by every worker process through the database."""

    # The service, as DownstreamError names it: "blobservice", "jobservice".
    service = models.CharField(max_length=64, primary_key=True, db_column="_id")
    state = models.CharField(
        max_length=16, choices=CircuitState.choices, default=CircuitState.CLOSED
    )
    # Transient failures in a row; any answer of the service resets it.
    failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True, default=None)
    # Open: when the next probe may be let through. Half-open: when the probe's lease ends (a
    # probe whose task died is replaced by the next one then).
    probe_at = models.DateTimeField(null=True, blank=True, default=None)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.service}: {self.state} ({self.failures} failures)"
