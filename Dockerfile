# One image for the API, the workers and the reference services (the command differs).
FROM python:3.13-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
RUN useradd --system --uid 1000 app && mkdir -p /staging && chown app /staging
USER app
EXPOSE 8000
ENV GUNICORN_WORKERS=4
CMD ["gunicorn", "frontservice.wsgi", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000"]
