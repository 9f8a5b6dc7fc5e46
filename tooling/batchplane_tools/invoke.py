"""Invoke one function's handler with a sample event, against a running `batchplane local`.

    python -m batchplane_tools.invoke state_change events/batch/succeeded.json

`sam local invoke` needs Docker; this runs the same `functions/<name>/app.py:handler` in this
process, with the environment the local stack gives its functions (read from its state file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from batchplane_tools.functions import LambdaContext, function_names, load_function
from batchplane_tools.paths import STATE_FILE
from batchplane_tools.state_file import LocalInfo, StateFileError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchplane_tools.invoke", description=__doc__)
    parser.add_argument("function", choices=function_names())
    parser.add_argument("event", type=Path, help="a JSON event, e.g. one of events/")
    parser.add_argument("--state-file", type=Path, default=STATE_FILE)
    args = parser.parse_args(argv)
    try:
        info = LocalInfo.load(args.state_file)
    except StateFileError as error:
        print(f"batchplane: {error}; is `make local` running?", file=sys.stderr)
        return 2
    os.environ.update(info.function_environment)
    event = json.loads(args.event.read_text(encoding="utf-8"))
    result = load_function(args.function).handler(event, LambdaContext(function_name=args.function))
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
