# One image for every guanjia role (cloud service, ingest worker, edge agent, simulators);
# the compose file picks the role with the command.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update && apt-get install -y --no-install-recommends mosquitto-clients && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY guanjia ./guanjia
COPY edge ./edge
COPY cloud ./cloud
COPY device_profiles ./device_profiles
COPY rules ./rules
COPY simulators ./simulators
RUN pip install . && useradd --system --home /var/lib/guanjia --create-home guanjia
USER guanjia
ENTRYPOINT ["guanjia"]
