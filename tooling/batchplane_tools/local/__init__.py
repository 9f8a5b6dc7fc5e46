"""The local stack: template.yaml provisioned on moto, the Batch emulator, triggers wired in-process."""
