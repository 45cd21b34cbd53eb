"""An S3-compatible server for tests: moto's server mode in a child process.

The plugin's tests start one per session (the ``s3_server`` fixture of its
``tests/conftest.py``) and make one fresh bucket per test (``s3_bucket``). moto
(the ``test`` extra) is needed only when a server starts.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codeactions_core.settings import inherited_environment
from codeactions_core.testing.server import free_port, stop_process

START_DEADLINE = 30.0
REGION = "us-east-1"
ACCESS_KEY_ID = "testing-access-key"
SECRET_ACCESS_KEY = "testing-secret-key"


@dataclass
class S3Server:
    """A running moto server (any credentials are accepted)."""

    process: subprocess.Popen[bytes]
    endpoint_url: str
    log_path: Path

    def client(self) -> Any:
        """A boto3 S3 client of this server."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def create_bucket(self, prefix: str = "codeactions-test") -> str:
        """A new, empty bucket with a unique name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def settings_values(self, bucket: str) -> dict[str, Any]:
        """Field values of the S3 plugin's settings pointing its log store at ``bucket`` here
        (``Settings.of(S3Settings, **values)``)."""
        return {
            "s3_enabled": True,
            "s3_endpoint": self.endpoint_url,
            "s3_region": REGION,
            "s3_bucket_name": bucket,
            "s3_access_key_id": ACCESS_KEY_ID,
            "s3_secret_access_key": SECRET_ACCESS_KEY,
        }

    def environment(self, bucket: str) -> dict[str, str]:
        """The same as ``FLOWS_CODE_ACTIONS_S3_*`` variables, for a server process."""
        return {
            "FLOWS_CODE_ACTIONS_S3_ENABLED": "true",
            "FLOWS_CODE_ACTIONS_S3_ENDPOINT": self.endpoint_url,
            "FLOWS_CODE_ACTIONS_S3_REGION": REGION,
            "FLOWS_CODE_ACTIONS_S3_BUCKET_NAME": bucket,
            "FLOWS_CODE_ACTIONS_S3_ACCESS_KEY_ID": ACCESS_KEY_ID,
            "FLOWS_CODE_ACTIONS_S3_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        }

    def stop(self) -> int:
        return stop_process(self.process, timeout=10)


def start_s3_server(log_dir: Path) -> S3Server:
    """Start ``python -m moto.server`` on a free loopback port; return once it answers."""
    port = free_port()
    log_path = Path(log_dir) / f"moto-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=inherited_environment(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = S3Server(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"moto server exited with {process.returncode}:\n{log_path.read_text()}"
            )
        try:
            with urllib.request.urlopen(f"{server.endpoint_url}/moto-api/data.json", timeout=1):
                return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.05)  # polling interval while the server boots, not synchronisation
    server.stop()
    raise RuntimeError(
        f"moto server did not answer within {START_DEADLINE}s:\n{log_path.read_text()}"
    )
