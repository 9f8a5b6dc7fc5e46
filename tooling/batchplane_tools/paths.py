"""Where the tooling finds the repository's files: it runs from a checkout, never from the layer."""

from pathlib import Path

# tooling/batchplane_tools/paths.py -> the repository root.
ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"
EVENTS_DIR = ROOT / "events"
TEMPLATE = ROOT / "template.yaml"
DEFAULT_POLICY = ROOT / "layers" / "core" / "policy.yaml"

# Where a running local stack writes its endpoints, and where the CLI and `invoke` look for them.
STATE_FILE = Path(".local") / "batchplane-local.json"
