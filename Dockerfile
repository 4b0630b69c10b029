# Production image: gunicorn serves leadcrm.wsgi; the same image runs the Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected into the image (whitenoise serves them); the key is a build-time dummy.
RUN SECRET_KEY=collectstatic-only DEBUG=false python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 --home-dir /app leadcrm \
    && mkdir -p /app/var \
    && chown -R leadcrm /app/var /app/staticfiles

USER leadcrm
EXPOSE 8000
CMD ["gunicorn", "leadcrm.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
