# One image for the API, the workers and the reference services (the command differs).
FROM python:3.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
# /run/metrics: prometheus_client's multiprocess directory. docker-compose.yml mounts a tmpfs
# there, empty at every container start; without it, files of a previous run would be summed in.
RUN useradd --system --uid 1000 app \
    && mkdir -p /staging /run/metrics && chown app /staging /run/metrics
USER app
EXPOSE 8000
ENV GUNICORN_WORKERS=4 LOG_FORMAT=json PROMETHEUS_MULTIPROC_DIR=/run/metrics
CMD ["gunicorn", "frontservice.wsgi", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
