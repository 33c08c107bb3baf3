"""What the domain announces. The worker tier and webhooks subscribe in their AppConfig.ready().

A change is announced after it is stored (the compare-and-set applied), by the process that made
it, and only to that process's receivers: a receiver that fails to act (the broker is down) loses
nothing, because what is owed is in the job itself and the reconciler finds it there (a job idle
in CREATED, a final job whose webhook is PENDING).
"""

from django.dispatch import Signal

# A job was recorded (CREATED) with its staged input in place. Arguments: `job`.
job_created = Signal()

# A job's status changed. Arguments: `job_id`, `from_status`, `to_status`, `reason`, `by`, and
# `changes`, the fields set in the same update (a pending webhook among them).
job_status_changed = Signal()
