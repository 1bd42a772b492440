# A slim image of the co-pilot. Data (versions, sandbox folders) lives on the /data volume.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 COPILOT_DATA_DIR=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY tools ./tools
COPY agents ./agents
COPY copilot ./copilot
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 copilot \
    && mkdir -p /data && chown copilot /data
USER copilot
VOLUME ["/data"]
ENTRYPOINT ["copilot"]
CMD ["demo"]
