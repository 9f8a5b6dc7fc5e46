"""Example workers: the programs that batchplane's example Batch job definitions run.

Each module is run as `python -m workers.<name> --input s3://bucket/key ...` (see the job definitions in
template.yaml). A worker reads its input object from S3, writes its results under the job's output
prefix (`BATCHPLANE_OUTPUT_PREFIX`), logs each step to stderr and reports through its exit code:
0 done, 1 a permanent failure (bad arguments, a missing input), 75 (EX_TEMPFAIL) a transient S3 error
that the retry policy may retry. The package needs nothing but boto3 and the standard library, so the
container image (workers/Dockerfile) stays small.
"""
