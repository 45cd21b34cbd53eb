# One image, any process: `docker run IMAGE serve | migrate | plugins | ...`
#
# The sandbox needs root in the container and a few privileges (README, "The sandbox"):
#   docker run --cap-add SYS_ADMIN --cap-add NET_ADMIN --security-opt seccomp=unconfined \
#              --cgroupns=private -p 8050:8050 IMAGE serve
# Without them `serve` refuses to start (SANDBOX_REQUIRE below) and names what is missing.
# Python 3.12, as the old image had: the server and the user code it runs (PEP 701 f-strings).
FROM python:3.12-slim-bookworm

# Toolchains of the JavaScript and Go runtimes; iproute2 and nftables for the sandbox's
# egress network; libseccomp2 for its system-call filter.
RUN apt-get update \
    && apt-get install -y --no-install-recommends golang-go nodejs iproute2 nftables libseccomp2 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/codeactions
COPY pyproject.toml README.md ./
COPY codeactions_core ./codeactions_core
# Each plugin is self-contained (harnesses and migrations are inside its package).
COPY plugins ./plugins
# The core and every plugin, as regular (non-editable) installs.
RUN pip install --no-cache-dir . ./plugins/*

# Runs as root inside the container: each run gets a uid of its own from the sandbox range,
# its namespaces and its egress rules, none of which an unprivileged server could set up.
ENV FLOWS_CODE_ACTIONS_DATA_DIR=/var/lib/codeactions \
    FLOWS_CODE_ACTIONS_SANDBOX_REQUIRE=namespaces,filesystem,network,egress,seccomp,uid,cgroups,cpu \
    PYTHONUNBUFFERED=1
RUN mkdir -p /var/lib/codeactions
# The Python libraries the old image preinstalled (codeactions_core/presets/legacy.txt: pinned,
# wheels only), into the libs directory every Python run imports from.
RUN FLOWS_CODE_ACTIONS_LIBS_INSTALL_TIMEOUT=1800 codeactions libs install --preset legacy
EXPOSE 8050
ENTRYPOINT ["codeactions"]
CMD ["serve"]
