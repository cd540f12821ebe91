# Production-like image for docker-compose.yml: gunicorn web, Celery worker and beat share it.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY accounts ./accounts
COPY channels ./channels
COPY connectors ./connectors
COPY orders ./orders
COPY inventory ./inventory
COPY templates ./templates
COPY static ./static
COPY manage.py ./
RUN pip install --no-cache-dir . && python manage.py collectstatic --noinput -v0 || true
RUN useradd --system storelink && chown -R storelink /app
USER storelink
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
