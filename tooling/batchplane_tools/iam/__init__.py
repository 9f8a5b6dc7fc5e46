"""Least privilege, checked: the template's roles resolved as CloudFormation would, every AWS call a role
makes recorded as IAM requests (action, resource ARN, condition keys), and an evaluator that follows
IAM's rules to say whether the role's policies allow each one (tests/iam/)."""
