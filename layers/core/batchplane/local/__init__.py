"""The local stack: template.yaml provisioned on moto, a Batch emulator, triggers wired in-process.

Never imported by a Lambda function.
"""
