# Times to the second, in ISO order, as the job list and a job's status history show them: the
# job page's fields, the History page and django-q2's task pages then read the same way.
# (Django's format syntax: https://docs.djangoproject.com/en/5.2/ref/templates/builtins/#date)
DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = "Y-m-d H:i:s"
