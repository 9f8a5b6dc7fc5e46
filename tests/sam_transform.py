"""The SAM transform, run by the SAM CLI's own environment (`make sam-env`), not the test one.

    $BATCHPLANE_SAM_PYTHON tests/sam_transform.py '{"SubnetIds": ["subnet-1"]}' < sam.json > cfn.json

samtranslator pins pydantic~=2.13 while the layer ships pydantic>=2.14; the tests run the layer's, so
the transform runs beside them, in the environment `sam build` and `sam deploy` use.
"""

import json
import sys

from samtranslator.translator.transform import transform


class ManagedPolicies:
    """Stands in for samtranslator's ManagedPolicyLoader, which lists AWS's managed policies through
    IAM to resolve policy names in a function's Policies. The template's policies are all inline,
    so the transform does not consult it today; it answers for the names SAM knows if that changes."""

    PATHS = {
        "AWSLambdaBasicExecutionRole": "service-role/",
        "AWSLambdaSQSQueueExecutionRole": "service-role/",
        "AWSLambdaRole": "service-role/",
        "AWSXrayWriteOnlyAccess": "",
    }

    def load(self) -> dict[str, str]:
        return {name: f"arn:aws:iam::aws:policy/{path}{name}" for name, path in self.PATHS.items()}


if __name__ == "__main__":
    template = json.load(sys.stdin)
    parameters = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    json.dump(transform(template, parameters, ManagedPolicies()), sys.stdout)
