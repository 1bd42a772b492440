# The co-pilot as a service. It listens on all interfaces, so it needs tokens:
#   docker build -t datacopilot .
#   docker run -e COPILOT_TOKENS=... -p 8000:8000 -v copilot-data:/data datacopilot
# Versions, uploads and the SQLite store live on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 COPILOT_DATA_DIR=/data \
    COPILOT_FRONTEND_DIR=/app/frontend
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tools ./tools
COPY agents ./agents
COPY copilot ./copilot
COPY frontend ./frontend
RUN pip install . \
    && useradd --create-home --uid 10001 copilot \
    && mkdir -p /data && chown copilot /data
USER copilot
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["copilot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
