"""The AWS adapters: DynamoDB metadata store, S3 blob store, and the botocore clients they use."""
