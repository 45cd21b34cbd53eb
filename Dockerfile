# One image, any process: `docker run IMAGE serve | migrate | plugins | ...`
FROM python:3.11-slim-bookworm

# Toolchains of the JavaScript and Go runtimes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends golang-go nodejs \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/codeactions
COPY pyproject.toml README.md ./
COPY codeactions_core ./codeactions_core
COPY migrations ./migrations
COPY plugins ./plugins
# The core and every plugin, as regular (non-editable) installs.
RUN pip install --no-cache-dir . ./plugins/*

RUN useradd --system --create-home --home-dir /var/lib/codeactions codeactions
ENV FLOWS_CODE_ACTIONS_DATA_DIR=/var/lib/codeactions \
    PYTHONUNBUFFERED=1
USER codeactions
EXPOSE 8050
ENTRYPOINT ["codeactions"]
CMD ["serve"]
