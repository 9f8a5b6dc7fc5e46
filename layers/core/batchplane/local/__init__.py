"""The local stack: template.yaml provisioned on moto, a Batch emulator, triggers wired in-process.

Never imported by a Lambda function.
"""

from pathlib import Path

# Where a running local stack writes its endpoints, and where the CLI and `invoke` look for them.
STATE_FILE = Path(".local") / "batchplane-local.json"
