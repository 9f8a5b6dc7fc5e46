"""The only code that talks to AWS. Each adapter takes its boto3 client by injection."""
